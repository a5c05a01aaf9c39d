"""The supervisor loop's clock: monotonic time and a heap of timers the loop runs when due."""

from __future__ import annotations

import time
from collections.abc import Callable

from spec_kit_runtime.policy.timers import Timer, Timers


class LoopClock:
    """``now`` and ``at`` for the supervisor's parts; the loop sleeps until ``timers`` are
    due and runs them."""

    def __init__(self) -> None:
        self.timers = Timers()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def at(self, when: float, action: Callable[[], None]) -> Timer:
        return self.timers.at(when, action)
