"""What a plugin registers its handlers with, inside its worker.

``WorkerRegistry`` implements the contracts' ``IServiceRegistry``; each registration
becomes a subscription announced to the supervisor, which routes matching messages back
here. Scope is checked on the spot, so a plugin learns of a refused pattern where it
asked; the supervisor checks again, since this process is not trusted.

``get_service(interface)`` is where a plugin finds services, as 1.0's ServiceProvider
was: those it registered itself, then the host services the supervisor serves it
(``services``: IConfigService, IFileSystemService, IStateService, ILoggingService,
IEventService).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spec_kit_contracts import ServiceContractError

from spec_kit_runtime.errors import RoutingError
from spec_kit_runtime.policy.patterns import pattern_problem
from spec_kit_runtime.policy.scopes import Scope

if TYPE_CHECKING:
    from .bus import WorkerBus

DEFAULT_PRIORITY = 50
FALLBACK_PRIORITY = 1_000_000  # handle_message: below any registered handler


@dataclass(frozen=True)
class Handler:
    """One subscription of this plugin: ``kind`` says how the handler is called."""

    sub_id: int
    pattern: str
    priority: int
    kind: str  # command: f(arguments, options); fallback: plugin.handle_message(m); else f(m)
    function: Callable[..., Any]


class WorkerRegistry:
    """The plugin's handlers, by subscription id."""

    def __init__(self, scope: Scope, announce: Callable[[Handler], None],
                 withdraw: Callable[[int], None]) -> None:
        self.plugin_id = scope.plugin_id
        self.handlers: dict[int, Handler] = {}
        self.services: dict[type, Any] = {}
        self.bus: WorkerBus | None = None  # set by the host: how a plugin sends messages
        self.host_services: dict[type, Any] = {}  # set by the host: served by the supervisor
        self._scope = scope
        self._announce = announce
        self._withdraw = withdraw
        self._next_id = 1

    def add(self, pattern: str, function: Callable[..., Any], kind: str,
            priority: int = DEFAULT_PRIORITY) -> int:
        """Register a handler for ``pattern`` and announce it; returns its id."""
        problem = pattern_problem(pattern)
        if problem:
            raise RoutingError(f"invalid pattern: {problem}", plugin=self.plugin_id)
        if not callable(function):
            raise TypeError(f"handler for '{pattern}' is not callable")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError("priority must be an int (0 = highest, 100 = lowest)")
        if priority < 0:  # below 0 is the host application's band: its handlers come first
            raise ValueError(f"priority {priority} is below 0, the highest a plugin may use")
        self._scope.check_subscribe(pattern)
        handler = Handler(self._next_id, pattern, priority, kind, function)
        self._next_id += 1
        self.handlers[handler.sub_id] = handler
        self._announce(handler)
        return handler.sub_id

    def remove(self, sub_id: int) -> bool:
        """Drop a handler and tell the supervisor; False when there is none by that id."""
        if self.handlers.pop(sub_id, None) is None:
            return False
        self._withdraw(sub_id)
        return True

    def clear(self) -> None:
        """Forget every handler (the plugin was deactivated)."""
        self.handlers.clear()
        self.services.clear()

    # -- IServiceRegistry ------------------------------------------------------------------

    def register_command(self, name: str, handler: Callable[..., Any]) -> None:
        """``command:{name}``; called as ``handler(arguments, options)`` as in 1.0."""
        self.add(f"command:{name}", handler, "command")

    def register_hook(self, name: str, handler: Callable[..., Any],
                      priority: int = DEFAULT_PRIORITY) -> None:
        """``hook:{name}``; every hook handler runs, by priority; called with the message."""
        self.add(f"hook:{name}", handler, "hook", priority)

    def register_generator(self, name: str, generator: Callable[..., Any]) -> None:
        """``generator:{name}``; called with the message."""
        self.add(f"generator:{name}", generator, "generator")

    def register_validator(self, name: str, validator: Callable[..., Any]) -> None:
        """``validator:{name}``; called with the message."""
        self.add(f"validator:{name}", validator, "validator")

    def register_service(self, interface: type, implementation: Any) -> None:
        """Keep a service implementation; services stay inside this worker process."""
        self.services[interface] = implementation

    def get_service(self, interface: type) -> Any:
        """The plugin's own implementation of ``interface``, else the host's."""
        found = self.services.get(interface, self.host_services.get(interface))
        if found is None:
            served = ", ".join(sorted(i.__name__ for i in self.host_services))
            raise ServiceContractError(
                f"no service {getattr(interface, '__name__', interface)!s} for plugin "
                f"'{self.plugin_id}': the runtime serves {served}, and the plugin registers "
                "its own with register_service")
        return found
