"""The contracts' services, served by the supervisor to each plugin over the wire.

IConfigService (``config_view``), IFileSystemService (``filesystem``), IStateService
(``state``) and ILoggingService (``logging_service``) answer ``ServiceCall`` records;
``dispatch`` checks each call's arguments and runs it for the plugin whose connection it
came on, on the loop or, for file I/O, on a ``background`` thread. IEventService needs
nothing here: inside the worker it is the plugin's bus and registry, whose scope the
supervisor already enforces.
"""
