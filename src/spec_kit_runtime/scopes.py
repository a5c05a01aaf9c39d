"""Plugin scopes: which addresses a plugin may send to and subscribe to (pure, cached).

A scope is the 1.0 default set for the plugin id plus its manifest's ``allowed_messages``.
``event:system:*`` is in every scope for *subscribing*, but only the supervisor may emit
it. Decisions are cached per address: scope checks sit on the routing hot path.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ScopeError
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
        self._send_cache: dict[str, bool] = {}

    def may_send(self, address: str) -> bool:
        """True when the plugin may send a message to ``address``."""
        decision = self._send_cache.get(address)
        if decision is None:
            decision = not matches(address, SYSTEM_EVENTS) and any(
                matches(address, pattern) for pattern in self.patterns
            )
            if len(self._send_cache) >= _CACHE_LIMIT:
                self._send_cache.clear()
            self._send_cache[address] = decision
        return decision

    def may_subscribe(self, pattern: str) -> bool:
        """True when every address ``pattern`` can match lies inside the scope."""
        return any(covers(allowed, pattern) for allowed in self.patterns)

    def check_send(self, address: str) -> None:
        """Raise ScopeError unless the plugin may send to ``address``."""
        if not self.may_send(address):
            reason = (
                "only the supervisor emits event:system:*"
                if matches(address, SYSTEM_EVENTS)
                else "outside its scope"
            )
            raise ScopeError(
                f"plugin '{self.plugin_id}' may not send '{address}': {reason}",
                plugin=self.plugin_id, address=address,
            )

    def check_subscribe(self, pattern: str) -> None:
        """Raise ScopeError unless the plugin may subscribe to ``pattern``."""
        if not self.may_subscribe(pattern):
            raise ScopeError(
                f"plugin '{self.plugin_id}' may not subscribe to '{pattern}': outside its scope",
                plugin=self.plugin_id, pattern=pattern,
            )
