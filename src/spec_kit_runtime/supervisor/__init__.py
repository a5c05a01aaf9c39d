"""The supervisor process: its loop and sockets (``loop``), the doors where clients and
workers come in, the router, each plugin's lifecycle and its recovery after a crash, the
control operations, heartbeats and the resource watchdog, and the fork server link that
spawns and reaps workers. ``ops`` holds what operators read (HTTP, metrics, systemd, logs);
``host_services`` the contracts' services it serves to plugins.

May import every package but ``client`` and ``cli``.
"""
