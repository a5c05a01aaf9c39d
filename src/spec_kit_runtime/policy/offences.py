"""Peers that keep sending what the supervisor refuses (pure, the clock passed in).

Each malformed frame, refused handshake or record out of turn is one offence of the
connection it came on. Past ``limit`` offences within ``window`` seconds the peer is
banned: the supervisor stops reading what it sends (a ZeroMQ ROUTER cannot close one
peer's connection; a plugin's worker is killed instead). Only the first few offences of
a peer are worth a log line each, so a flood cannot flood the log. Both tables are
bounded, oldest forgotten first, so a stranger cycling connections keeps memory flat.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

LIMIT = 20
WINDOW = 10.0
LOGGED = 3  # offences per peer logged one by one; the ban is logged too
CAPACITY = 4096  # peers remembered in each table
_Entry = TypeVar("_Entry")


@dataclass
class _Count:
    since: float
    count: int = 0


class Offences:
    """Offence counts and bans of the peers of one socket."""

    def __init__(self, limit: int = LIMIT, window: float = WINDOW,
                 capacity: int = CAPACITY) -> None:
        self.limit, self.window, self.capacity = limit, window, capacity
        self._counts: OrderedDict[bytes, _Count] = OrderedDict()
        self._banned: OrderedDict[bytes, None] = OrderedDict()

    def is_banned(self, peer: bytes) -> bool:
        return peer in self._banned

    def offend(self, peer: bytes, now: float) -> int:
        """Count one offence of ``peer``; returns its count in the current window.

        The count reaching ``limit`` bans the peer (``is_banned`` is True from then on).
        """
        entry = self._counts.get(peer)
        if entry is None or now - entry.since > self.window:
            entry = self._counts[peer] = _Count(now)
        self._counts.move_to_end(peer)
        entry.count += 1
        if entry.count >= self.limit:
            del self._counts[peer]
            self._banned[peer] = None
            _bound(self._banned, self.capacity)
        _bound(self._counts, self.capacity)
        return entry.count

    def forget(self, peer: bytes) -> None:
        """The peer is gone for good (its worker ended): nothing to remember."""
        self._counts.pop(peer, None)
        self._banned.pop(peer, None)


def _bound(table: OrderedDict[bytes, _Entry], capacity: int) -> None:
    while len(table) > capacity:
        table.popitem(last=False)
