"""``container.message_bus``: 1.0's ``MessageBus`` API for the application that owns the
container (the host), over the supervisor.

Spec-Kit drives plugins through it: its CLI sends commands with ``send(message)``, and
``SpecKitCore.connect_runtime(container, container.message_bus)`` subscribes the core's
request handler with ``subscribe("core.*", handler)``. The host is trusted (it holds the
runtime's token, with which it could load or stop any plugin anyway): it sends with no
plugin's scope and may handle any address. Its handlers run in its own process, on the
caller-handler pool (``caller_handlers``), and plugins reach them like any other handler.

Two 1.0 habits are kept. A pattern without ``:`` is a 1.0 *topic*: the host serves that
namespace's requests, ``core.*`` being ``request:core:*`` (so a plugin's
``Request(method="core:get_project_info")``, inside every plugin's default scope, reaches
Spec-Kit's core bridge, which looks ``core:get_project_info`` up among its commands). A
handler taking two positional parameters is called as ``handler(address, message)``, one
taking one as ``handler(message)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from spec_kit_contracts import Message

from spec_kit_runtime.inprocess.message_bus import DeliveryMode
from spec_kit_runtime.wire.addressing import address_of

Send = Callable[[Message], Any]
Subscribe = Callable[[str, Callable[[Message], Any], int], str]
Unsubscribe = Callable[[str], bool]


def host_pattern(pattern: str) -> str:
    """The address pattern a host's subscription pattern stands for: an address pattern
    itself, a 1.0 topic (no ``:``; ``core.*``, ``core.get_spec``) the requests to it."""
    if ":" in pattern or "." not in pattern:
        return pattern
    return "request:" + pattern.replace(".", ":")


class HostBus:
    """Send and handle messages as the host application."""

    def __init__(self, send: Send, subscribe: Subscribe, unsubscribe: Unsubscribe) -> None:
        self._send, self._subscribe, self._unsubscribe = send, subscribe, unsubscribe

    def send(self, message: Message, mode: DeliveryMode = DeliveryMode.SYNC) -> Any:
        """Deliver ``message`` by its address and return what the delivery rule returns:
        the handler's result for a command or request, the list of results for a hook,
        the number of subscribers reached for an event. Nobody handling a command or
        request raises NoHandlerError (1.0 returned ``[]``)."""
        if mode is not DeliveryMode.SYNC:
            raise ValueError(f"the container's message bus delivers {DeliveryMode.SYNC.name} "
                             f"only, not {mode.name}: plugins answer from their own processes")
        return self._send(message)

    def subscribe(self, pattern: str, handler: Callable[..., Any], priority: int = 50) -> str:
        """Handle ``pattern`` here, in this process; returns a subscription id. An invalid
        pattern raises RoutingError."""
        if not callable(handler):
            raise TypeError("handler must be callable")
        return self._subscribe(host_pattern(pattern), _adapted(handler), priority)

    def unsubscribe(self, subscription_id: str) -> bool:
        """Remove a handler added by ``subscribe``; False when it was not there."""
        return self._unsubscribe(subscription_id)


def _adapted(handler: Callable[..., Any]) -> Callable[[Message], Any]:
    """``handler`` called the way it was written for 1.0 (see the module's docstring)."""
    if _positional_count(handler) < 2:
        return handler
    return lambda message: handler(address_of(message), message)


def _positional_count(handler: Callable[..., Any]) -> int:
    """How many positional parameters ``handler`` requires (1 when it cannot be told)."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(1 for p in parameters
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               and p.default is p.empty)
