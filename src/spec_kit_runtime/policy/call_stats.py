"""Per-plugin message figures (pure): handled, errors, in flight, latency percentiles.

The router counts each message call to a plugin when it starts and when it ends; status
reads a frozen snapshot. Latencies are kept for the last ``window`` calls only, so the
figures follow the plugin's current behaviour and memory stays fixed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class CallFigures:
    """A plugin's message figures at one moment (as is in status: wire.status)."""

    handled: int  # calls answered, plus events delivered
    errors: int  # calls answered with an error (handler raised, timed out, worker died)
    in_flight: int
    p50_ms: float | None  # over the last calls; None before the first
    p99_ms: float | None


class CallStats:
    """Counters and a window of recent latencies for one plugin."""

    def __init__(self, window: int = 1024) -> None:
        self.handled = 0
        self.errors = 0
        self.in_flight = 0
        self._latencies: deque[float] = deque(maxlen=window)

    def started(self) -> None:
        self.in_flight += 1

    def finished(self, seconds: float, ok: bool) -> None:
        self.in_flight -= 1
        self.handled += 1
        self.errors += not ok
        self._latencies.append(seconds)

    def withdrawn(self) -> None:
        """A call started but not delivered after all: it will be counted when it is."""
        self.in_flight -= 1

    def notified(self) -> None:
        """An event delivered (one way: no answer, no latency)."""
        self.handled += 1

    def figures(self) -> CallFigures:
        ordered = sorted(self._latencies)
        return CallFigures(self.handled, self.errors, self.in_flight,
                           _percentile(ordered, 0.50), _percentile(ordered, 0.99))


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil, at least the first
    return round(ordered[int(rank) - 1] * 1000, 3)
