"""Plugin scopes: which addresses a plugin may send to and subscribe to (pure, cached).

A scope is the 1.0 default set for the plugin id plus the patterns of its manifest's
``allowed_messages`` it was granted (``grants``). Whatever a scope says, a plugin handles
commands and requests in its own namespace only, and emits events in its own namespace
only (``namespaces``): ``event:system:*`` is in every scope for *subscribing*, but only the
supervisor emits it. Decisions are cached per address: scope checks sit on the routing
hot path.
"""

from __future__ import annotations

from collections.abc import Iterable

from spec_kit_runtime.errors import ScopeError

from .namespaces import emitting_problem, handling_problem, owner_of
from .patterns import covers, matches

SYSTEM_EVENTS = "event:system:*"
_CACHE_LIMIT = 4096


def default_patterns(plugin_id: str) -> tuple[str, ...]:
    """The 1.0 default scope of a plugin."""
    return (
        f"command:{plugin_id}:*",
        f"event:{plugin_id}:*",
        f"request:{plugin_id}:*",
        "generator:*",
        "validator:*",
        "hook:*",
        SYSTEM_EVENTS,
        "request:core:*",
    )


class Scope:
    """The set of patterns one plugin may use."""

    def __init__(self, plugin_id: str, extra_patterns: Iterable[str] = ()) -> None:
        self.plugin_id = plugin_id
        self.patterns: tuple[str, ...] = tuple(
            dict.fromkeys((*default_patterns(plugin_id), *extra_patterns))
        )
        self._send_cache: dict[str, str | None] = {}

    def send_problem(self, address: str) -> str | None:
        """Why the plugin may not send to ``address``, or None when it may (cached)."""
        if address in self._send_cache:
            return self._send_cache[address]
        problem = emitting_problem(self.plugin_id, address)
        if problem is None and not any(matches(address, p) for p in self.patterns):
            problem = f"plugin '{self.plugin_id}' may not send '{address}': outside its scope"
        if len(self._send_cache) >= _CACHE_LIMIT:
            self._send_cache.clear()
        self._send_cache[address] = problem
        return problem

    def subscribe_problem(self, pattern: str) -> str | None:
        """Why the plugin may not handle ``pattern``, or None: every address the pattern
        can match must lie inside the scope, and none in another's namespace."""
        problem = handling_problem(self.plugin_id, pattern)
        if problem is None and not any(covers(allowed, pattern) for allowed in self.patterns):
            problem = (f"plugin '{self.plugin_id}' may not subscribe to '{pattern}': "
                       "outside its scope")
        return problem

    def may_send(self, address: str) -> bool:
        """True when the plugin may send a message to ``address``."""
        return self.send_problem(address) is None

    def may_subscribe(self, pattern: str) -> bool:
        """True when the plugin may subscribe a handler to ``pattern``."""
        return self.subscribe_problem(pattern) is None

    def check_send(self, address: str) -> None:
        """Raise ScopeError unless the plugin may send to ``address``."""
        problem = self.send_problem(address)
        if problem is not None:
            raise ScopeError(problem, plugin=self.plugin_id, address=address,
                             owner=owner_of(address))

    def check_subscribe(self, pattern: str) -> None:
        """Raise ScopeError unless the plugin may subscribe to ``pattern``."""
        problem = self.subscribe_problem(pattern)
        if problem is not None:
            raise ScopeError(problem, plugin=self.plugin_id, pattern=pattern,
                             owner=owner_of(pattern))
