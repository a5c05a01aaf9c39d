"""The supervisor process: its loop and sockets (``loop``), the doors where clients and
workers come in, the router, each plugin's lifecycle and its recovery after a crash, the
control operations, heartbeats and the resource watchdog, and the worker table with the
fork server link that spawns and reaps workers; the parts work through narrow ports
(``ports``). ``ops`` holds what operators read (HTTP, metrics, systemd); ``host_services``
the contracts' services it serves to plugins.

What each room may import: docs/ARCHITECTURE.md (held by tests/test_architecture.py).
"""
