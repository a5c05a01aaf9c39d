"""A process's descendants, read from ``/proc`` (the OS edge of the watchdog).

``/proc/PID/task/TID/children`` lists each thread's children directly, so walking a tree
costs a few reads per process. ``psutil.Process.children`` instead builds a map of every
process on the machine per call, which for 50 workers each second is a real share of a core.
"""

from __future__ import annotations

import contextlib
import os


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (of any of its threads); [] once it is gone."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as listing:
                found.extend(int(child) for child in listing.read().split())
        except OSError:
            continue  # that thread just ended
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    found: list[int] = []
    pending = [pid]
    while pending:
        below = children(pending.pop())
        found.extend(below)
        pending.extend(below)
    return found


OWNER_VARIABLE = "SPEC_KIT_WORKER"  # each worker sets it to its pid, for its children


def owner_of(pid: int) -> int | None:
    """The worker an orphan adopted by the fork server came from: its inherited
    ``SPEC_KIT_WORKER`` mark, else its session; None once it is gone."""
    mark = OWNER_VARIABLE.encode() + b"="
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            for entry in environ.read().split(b"\0"):
                if entry.startswith(mark) and entry[len(mark):].isdigit():
                    return int(entry[len(mark):])
        return os.getsid(pid)
    except OSError:
        return None


def signal_descendants(pid: int, signum: int) -> list[int]:
    """Send ``signum`` to every process below ``pid`` (not ``pid`` itself); returns them."""
    below = descendants(pid)
    for member in below:
        with contextlib.suppress(OSError):  # it just ended
            os.kill(member, signum)
    return below
