"""How much of a plugin's output reaches the supervisor's log (pure; the clock passed in).

A token bucket: ``rate`` bytes a second, with up to ``burst`` saved up, so a plugin may
print a long report at once but cannot flood the log, the disk under it or the loop that
writes it. Output over the budget is dropped whole lines at a time, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutputFigures:
    """What a plugin's output budget has let through and dropped, at one moment (status)."""

    logged_bytes: int
    dropped_bytes: int
    dropped_lines: int


@dataclass
class OutputBudget:
    """One plugin's allowance of logged output, and what it has used and dropped."""

    rate: float | None  # bytes per second; None: no limit
    burst: float  # the most that can be saved up
    logged_bytes: int = 0
    dropped_bytes: int = 0
    dropped_lines: int = 0
    _tokens: float = field(default=-1.0, repr=False)  # -1: full at the first take
    _at: float = field(default=0.0, repr=False)

    def take(self, size: int, now: float, overhead: int = 0) -> bool:
        """Whether a line of ``size`` bytes may be logged now (and count it either way);
        ``overhead``: what logging it costs beyond its bytes, charged to the budget too."""
        if self.rate is not None:
            self._refill(now, self.rate)
            if size + overhead > self._tokens:
                self.drop(size, 1)
                return False
            self._tokens -= size + overhead
        self.logged_bytes += size
        return True

    def exhausted(self, now: float) -> bool:
        """Nothing can be logged now: a reader may drop a whole chunk without looking."""
        if self.rate is None:
            return False
        self._refill(now, self.rate)
        return self._tokens < 1

    def drop(self, size: int, lines: int) -> None:
        self.dropped_bytes += size
        self.dropped_lines += lines

    def _refill(self, now: float, rate: float) -> None:
        if self._tokens < 0:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * rate)
        self._at = now

    def figures(self) -> OutputFigures:
        return OutputFigures(self.logged_bytes, self.dropped_bytes, self.dropped_lines)
