"""Step marks for measuring a start or a restart across processes (``bench/restart.py
--timeline``): where each of the supervisor, the fork server and a worker is, when.

Off unless ``SPEC_KIT_RUNTIME_TIMELINE`` names a folder when the process starts; then each
process appends ``<CLOCK_MONOTONIC ns> <step>`` lines to ``<folder>/<pid>.marks`` (one clock
for every process on Linux, so the benchmark lines them up with its own). Off, a mark costs
one global lookup. The file is opened at a process's first mark, which for a worker comes
before its confinement; the plugin can write to it: it is a benchmark's tool, never on.
"""

from __future__ import annotations

import os
import time

VARIABLE = "SPEC_KIT_RUNTIME_TIMELINE"
_FOLDER = os.environ.get(VARIABLE) or None
_file: tuple[int, int] | None = None  # (pid, fd): a forked child opens a file of its own


def own_fd() -> tuple[int, ...]:
    """The marks file open in this process, its parent's in a child just forked: a forking
    process's children close it (each opens a file of its own at its first mark), so that
    no plugin inherits another process's."""
    return () if _file is None else (_file[1],)


def mark(step: str) -> None:
    """Note that this process reached ``step`` now (a no-op unless the timeline is on)."""
    if _FOLDER is None:
        return
    global _file
    pid = os.getpid()
    if _file is None or _file[0] != pid:  # the parent's fd, if inherited, is not ours
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        _file = pid, os.open(os.path.join(_FOLDER, f"{pid}.marks"), flags, 0o600)
    os.write(_file[1], f"{time.monotonic_ns()} {step}\n".encode())
