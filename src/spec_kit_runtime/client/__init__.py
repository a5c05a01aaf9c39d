"""The client side: ``SupervisorClient`` on the wire, ``PluginContainer`` (the 1.0 front
door, which launches a private supervisor or attaches to one), handlers that live in the
caller, and the container's 1.0 views (``plugins``, ``message_bus``).

It never imports the supervisor's code, which runs in another process.
"""
