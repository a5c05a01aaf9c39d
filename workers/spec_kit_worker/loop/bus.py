"""The handle a plugin uses to send messages and emit events from inside its worker.

Plugins reach it as ``registry.bus`` in ``register_services(registry)``. Every send goes
through the supervisor, which applies the plugin's scope and stamps its identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spec_kit_contracts import Event, Message

from spec_kit_runtime.wire.addressing import address_of
from spec_kit_runtime.wire.codec import pack_message

if TYPE_CHECKING:
    from .host import WorkerHost


class WorkerBus:
    """Scoped messaging for the plugin in this worker (call it from the plugin's thread)."""

    def __init__(self, host: WorkerHost) -> None:
        self._host = host

    def send(self, message: Message) -> Any:
        """Route ``message`` through the supervisor and return the handler's result."""
        address = address_of(message)
        self._host.scope.check_send(address)
        timeout = getattr(message, "timeout", None) or 0.0
        return self._host.request(address, pack_message(message), float(timeout))

    def emit(self, event_name: str, data: dict[str, Any] | None = None) -> Any:
        """Publish ``event:{event_name}``; returns how many subscribers it reached."""
        return self.send(Event(event_name=event_name, event_data=data or {}))

    def subscribe(self, pattern: str, handler: Callable[[Message], Any],
                  priority: int = 50) -> int:
        """Call ``handler(message)`` for messages matching ``pattern`` (within scope)."""
        self._host.check_thread()
        return self._host.registry.add(pattern, handler, "message", priority)
