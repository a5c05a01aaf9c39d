"""The 1.0 in-process API, kept for handlers that live in the caller: ``ScopedMessageBus``
and ``ServiceProvider``."""
