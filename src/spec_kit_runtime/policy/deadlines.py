"""When each call in flight times out (pure, the clock passed in).

A call is answered long before its deadline almost always, so a deadline must cost next to
nothing to set and to drop: a dict entry plus a heap entry, dropped lazily. The heap is
rebuilt from the live entries once stale ones outnumber them, so memory follows the calls
in flight, not the traffic.

A deadline is a boundary: an answer that comes at or after it is late (``settle``), exactly
as ``due`` hands the key back at that instant. The two must agree, or an answer read in the
same turn of the loop as its deadline could count as both in time and expired.
"""

from __future__ import annotations

import heapq

_SLACK = 1024  # stale heap entries tolerated beyond the live ones before a rebuild


class Deadlines:
    """Deadlines by key (a call id); ``due`` hands back the keys whose time has come."""

    def __init__(self) -> None:
        self._when: dict[int, float] = {}
        self._heap: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._when)

    def add(self, key: int, when: float) -> None:
        self._when[key] = when
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > 2 * len(self._when) + _SLACK:
            self._heap = [(at, k) for k, at in self._when.items()]
            heapq.heapify(self._heap)

    def remove(self, key: int) -> None:
        """Forget ``key`` (answered or failed); unknown keys are ignored."""
        self._when.pop(key, None)

    def settle(self, key: int, now: float) -> bool:
        """Forget ``key`` (answered at ``now``); True if that was before its deadline, False
        if it was late (at or after it) or ``key`` is not known."""
        when = self._when.pop(key, None)
        return when is not None and now < when

    def next_due(self) -> float | None:
        """The earliest live deadline, or None."""
        heap = self._heap
        while heap and self._when.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float) -> list[int]:
        """Remove and return every key whose deadline is at or before ``now``, earliest first."""
        expired = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if self._when.get(key) == when:
                del self._when[key]
                expired.append(key)
        return expired
