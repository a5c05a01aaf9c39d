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


def signal_descendants(pid: int, signum: int) -> list[int]:
    """Send ``signum`` to every process below ``pid`` (not ``pid`` itself); returns them."""
    below = descendants(pid)
    for member in below:
        with contextlib.suppress(OSError):  # it just ended
            os.kill(member, signum)
    return below
