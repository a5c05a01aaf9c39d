"""The worker host: the code that runs inside each plugin's worker process.

It connects to the supervisor, proves its identity, loads exactly one plugin, runs the
lifecycle phases the supervisor asks for and calls the plugin's handlers. The supervisor
starts it as ``python -m spec_kit_worker --bootstrap-fd N [--progress-fd M]``.
"""
