"""Deadlines for the supervisor's loop: a heap of callbacks, the clock passed in."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

_COMPACT_AFTER = 1024


def _nothing() -> None:
    return None


@dataclass(order=True)
class Timer:
    """A pending callback; cancel() makes it a no-op."""

    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)
    owner: Timers | None = field(default=None, compare=False, repr=False)

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback = _nothing  # what it would have run is not kept alive till due
            if self.owner is not None:
                self.owner.cancelled_one()


class Timers:
    """Callbacks due at given times; the loop asks how long it may sleep."""

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._cancelled = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, next(self._seq), callback, owner=self)
        heapq.heappush(self._heap, timer)
        return timer

    def cancelled_one(self) -> None:
        """Most timers are deadlines that get cancelled: compact before they pile up."""
        self._cancelled += 1
        if self._cancelled > _COMPACT_AFTER and self._cancelled * 2 > len(self._heap):
            self._heap = [t for t in self._heap if not t.cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_due(self) -> float | None:
        """When the earliest live timer is due, or None."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
            self._cancelled -= 1
        return self._heap[0].when if self._heap else None

    def run_due(self, now: float) -> None:
        """Run every live timer due at ``now`` (callbacks may add timers)."""
        while self._heap and self._heap[0].when <= now:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                self._cancelled -= 1
            else:
                timer.owner = None  # cancelling a fired timer must not count
                timer.callback()
