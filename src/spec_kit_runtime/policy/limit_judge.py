"""Whether a worker's sampled usage breaks its limits (pure; samples and clock passed in).

The watchdog samples each worker's whole process tree; this decides. Memory and the
number of processes are judged on each sample; CPU only when it stayed over the limit for
a whole window, so a short burst is fine and a spinning plugin is not.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """One sample of a worker's process tree."""

    at: float  # monotonic seconds
    rss_mb: float
    cpu_percent: float  # of one core, summed over the tree, since the previous sample
    processes: int
    open_files: int = 0  # file descriptors over the tree (shown, not judged: RLIMIT_NOFILE)


@dataclass(frozen=True)
class WatchedLimits:
    memory_mb: int | None
    cpu_percent: float | None
    cpu_window: float
    max_processes: int | None


class LimitJudge:
    """One worker's recent usage and the verdict on it."""

    def __init__(self, limits: WatchedLimits) -> None:
        self.limits = limits
        self._cpu: deque[Usage] = deque()

    def observe(self, usage: Usage) -> str | None:
        """The violation this sample shows, in words, or None."""
        limits = self.limits
        if limits.memory_mb is not None and usage.rss_mb > limits.memory_mb:
            return (f"memory limit {limits.memory_mb} MiB exceeded: "
                    f"{usage.rss_mb:.0f} MiB")
        if limits.max_processes is not None and usage.processes > limits.max_processes:
            return (f"process limit {limits.max_processes} exceeded: "
                    f"{usage.processes} processes")
        if limits.cpu_percent is None:
            return None
        self._cpu.append(usage)
        # Keep the newest sample at or before the window's start as its anchor: each later
        # sample's cpu_percent covers the time since the one before it.
        start = usage.at - limits.cpu_window
        while len(self._cpu) >= 2 and self._cpu[1].at <= start:
            self._cpu.popleft()
        if self._cpu[0].at > start or any(
                sample.cpu_percent <= limits.cpu_percent for sample in list(self._cpu)[1:]):
            return None
        average = sum(s.cpu_percent for s in list(self._cpu)[1:]) / (len(self._cpu) - 1)
        return (f"cpu limit {limits.cpu_percent:g}% exceeded: {average:.0f}% "
                f"for {limits.cpu_window:g}s")
