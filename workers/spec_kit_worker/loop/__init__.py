"""A worker's loop: its connection to the supervisor (``host``), the plugin's bus and
handler registry, the contracts' services as proxies, and loading the plugin's class."""
