"""Per-plugin resource limits (pure): what each worker may use, and how they are written.

The worker applies the kernel's share at spawn (``setrlimit``, before any plugin code):
``memory_mb`` as RLIMIT_DATA (a clean MemoryError; RLIMIT_AS would also count thread
stacks), ``cpu_seconds`` as RLIMIT_CPU (SIGXCPU, then SIGKILL a few seconds later),
``open_files`` as RLIMIT_NOFILE, and no core dumps. ``None`` means no limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

CPU_HARD_GRACE = 5  # seconds of CPU between SIGXCPU (catchable) and the kernel's SIGKILL


@dataclass(frozen=True)
class Limits:
    """A plugin's resource limits (config defaults, overridable per plugin)."""

    memory_mb: int | None = 1024
    cpu_seconds: int | None = None
    open_files: int | None = 1024

    def describe(self) -> dict[str, Any]:
        return {"memory_mb": self.memory_mb, "cpu_seconds": self.cpu_seconds,
                "open_files": self.open_files}


_MINIMUM = {"memory_mb": 64, "cpu_seconds": 1, "open_files": 32}  # below: the worker can't run


def limits_from_data(data: Mapping[str, Any], base: Limits) -> Limits:
    """``base`` with the settings in ``data`` applied; ValueError says what is wrong."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _MINIMUM:
            raise ValueError(f"unknown key '{key}' (known: {', '.join(_MINIMUM)})")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < _MINIMUM[key]):
            raise ValueError(f"{key} must be null (no limit) or an integer >= {_MINIMUM[key]}")
        values[key] = value
    return replace(base, **values)
