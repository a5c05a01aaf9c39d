"""The log, as every role writes it: its formats (text or JSON, the plugin id on every line
about a plugin) and the capped file a private supervisor logs to."""
