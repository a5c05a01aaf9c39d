"""Per-plugin resource limits (pure): what each worker may use, and how they are written.

Two layers. The worker applies the kernel's share at spawn (``setrlimit``, before any
plugin code): ``memory_mb`` as RLIMIT_DATA (a clean MemoryError; RLIMIT_AS would also
count thread stacks), ``cpu_seconds`` as RLIMIT_CPU (SIGXCPU, then SIGKILL a few seconds
later), ``open_files`` as RLIMIT_NOFILE, and no core dumps. The supervisor's watchdog
samples the worker's whole process tree for what rlimits cannot see: the tree's RSS
against ``memory_mb``, ``cpu_percent`` sustained over ``cpu_window`` seconds, and
``max_processes``. The supervisor also captures the worker's stdout and stderr and logs at
most ``output_kb_per_s`` of them. ``None`` means no limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .limit_judge import WatchedLimits
from .output_budget import OutputBudget

OUTPUT_BURST_SECONDS = 4  # a plugin may print this many seconds' worth of its rate at once
CPU_HARD_GRACE = 5  # seconds of CPU between SIGXCPU (catchable) and the kernel's SIGKILL


@dataclass(frozen=True)
class Limits:
    """A plugin's resource limits (config defaults, overridable per plugin)."""

    memory_mb: int | None = 1024
    cpu_seconds: int | None = None
    open_files: int | None = 1024
    cpu_percent: float | None = None  # opt-in: long honest work must not be killed
    cpu_window: float = 60.0
    max_processes: int | None = 32
    output_kb_per_s: int | None = 256  # stdout + stderr into the log; 4 s of it at once

    def rlimits(self) -> dict[str, int | None]:
        """What the worker applies to itself."""
        return {"memory_mb": self.memory_mb, "cpu_seconds": self.cpu_seconds,
                "open_files": self.open_files}

    def watched(self) -> WatchedLimits:
        """What the supervisor's watchdog checks."""
        return WatchedLimits(self.memory_mb, self.cpu_percent, self.cpu_window,
                             self.max_processes)

    def output_budget(self) -> OutputBudget:
        """The allowance of captured output the supervisor logs."""
        if self.output_kb_per_s is None:
            return OutputBudget(rate=None, burst=0.0)
        rate = self.output_kb_per_s * 1024.0
        return OutputBudget(rate=rate, burst=OUTPUT_BURST_SECONDS * rate)


def _integer(minimum: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"an integer >= {minimum}"
        return None
    return check


def _number(minimum: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < minimum):
            return f"a finite number >= {minimum:g}"
        return None
    return check


_CHECKS: dict[str, tuple[Callable[[Any], str | None], bool]] = {  # check, may be null
    "memory_mb": (_integer(64), True),  # below: the worker itself cannot run
    "cpu_seconds": (_integer(1), True),
    "open_files": (_integer(32), True),
    "cpu_percent": (_number(1), True),
    "cpu_window": (_number(1), False),
    "max_processes": (_integer(1), True),
    "output_kb_per_s": (_integer(1), True),
}


def limits_from_data(data: Mapping[str, Any], base: Limits) -> Limits:
    """``base`` with the settings in ``data`` applied; ValueError says what is wrong."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _CHECKS:
            raise ValueError(f"unknown key '{key}' (known: {', '.join(_CHECKS)})")
        check, nullable = _CHECKS[key]
        problem = None if value is None and nullable else check(value)
        if problem:
            prefix = "null (no limit) or " if nullable else ""
            raise ValueError(f"{key} must be {prefix}{problem}")
        values[key] = float(value) if key in ("cpu_percent", "cpu_window") and value else value
    return replace(base, **values)
