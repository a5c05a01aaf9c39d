"""Who handles which address: every subscription, by owner (pure, cached).

An owner is a plugin id (the handler runs in that plugin's worker) or a caller key
(``caller:...``: the handler runs in a client process, subscribed with a plugin's scope).

Lookups are cached per address and the cache is dropped on any change, so routing a
message costs a dict lookup, not a scan of every subscription.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .patterns import matches

_CACHE_LIMIT = 8192


@dataclass(frozen=True)
class Route:
    """One subscription: ``owner``'s handler ``sub_id`` for ``pattern``."""

    owner: str
    sub_id: int
    pattern: str
    priority: int
    kind: str
    order: int  # registration order, to break priority ties deterministically


class RoutingTable:
    """Subscriptions by owner, and the sorted routes for each address."""

    def __init__(self) -> None:
        self._by_owner: dict[str, dict[int, Route]] = defaultdict(dict)
        self._cache: dict[str, tuple[Route, ...]] = {}
        self._order = 0

    def add(self, owner: str, sub_id: int, pattern: str, priority: int, kind: str) -> None:
        self._order += 1
        self._by_owner[owner][sub_id] = Route(
            owner, sub_id, pattern, priority, kind, self._order
        )
        self._cache.clear()

    def remove(self, owner: str, sub_id: int) -> None:
        if self._by_owner.get(owner, {}).pop(sub_id, None) is not None:
            self._cache.clear()

    def clear_owner(self, owner: str) -> None:
        if self._by_owner.pop(owner, None):
            self._cache.clear()

    def count(self, owner: str) -> int:
        return len(self._by_owner.get(owner, ()))

    def patterns_of(self, owner: str) -> list[str]:
        return sorted({r.pattern for r in self._by_owner.get(owner, {}).values()})

    def routes(self, address: str) -> tuple[Route, ...]:
        """Every route matching ``address``, best (lowest priority number) first."""
        found = self._cache.get(address)
        if found is None:
            found = tuple(sorted(
                (route for subs in self._by_owner.values() for route in subs.values()
                 if matches(address, route.pattern)),
                key=lambda r: (r.priority, r.order),
            ))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[address] = found
        return found
