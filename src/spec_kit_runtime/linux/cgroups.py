"""Per-worker cgroups (v1 ``memory`` and ``pids``), where this machine lets us make them.

Opt-in (``runtime.cgroups: true``): joining a v1 group makes the kernel wait for an RCU
grace period, about 13 ms per worker start here, which doubles a restart. Then
feature-detected when the supervisor starts: it makes a group of its own under its current
group of each controller (``spec-kit-runtime-PID``); if it may not (no root, no such
controllers, cgroup v2 only), cgroups stay off and the rlimits and the watchdog do the work
alone, as everywhere. With them, each worker gets a group per controller, which the worker
joins before any plugin code runs and which every process it starts inherits: the kernel
then holds the whole tree to ``memory_mb`` (its OOM killer acts inside the group) and stops
a fork bomb at once (``pids.max``), and the fork server kills every member when the worker
ends, however it hid (``setsid``, a cleared environment, double forks).

``pids.max`` counts tasks, threads included, so it is set to ``TASKS_PER_PROCESS`` times
``max_processes``: a backstop faster than the watchdog's sampling, which keeps the exact
process count.

cgroup v2 is not supported yet: it needs a delegated subtree whose processes all live in
leaf groups, which the supervisor's own placement rarely allows.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from pathlib import Path
from typing import Any

from spec_kit_runtime.policy.limits import Limits

log = logging.getLogger(__name__)
CONTROLLERS = ("memory", "pids")
TASKS_PER_PROCESS = 64  # threads a process may have before the pids backstop counts them
V1_ROOT = Path("/sys/fs/cgroup")


class Cgroups:
    """The supervisor's cgroups: detected once, then one group per worker and controller."""

    def __init__(self, enabled: bool, root: Path = V1_ROOT) -> None:
        self.roots: dict[str, Path] = {}
        self.reason = "off in the config (runtime.cgroups)"
        self._numbers = itertools.count(1)
        if enabled:
            self.reason = self._make_roots(root)

    @property
    def available(self) -> bool:
        return bool(self.roots)

    def describe(self) -> dict[str, Any]:
        if not self.roots:
            return {"active": False, "reason": self.reason}
        return {"active": True, "version": 1, "controllers": list(self.roots),
                "groups": [str(path) for path in self.roots.values()]}

    def create(self, plugin_id: str, limits: Limits) -> tuple[str, ...]:
        """Groups for a new worker of ``plugin_id`` with its limits set; () without cgroups."""
        if not self.roots:
            return ()
        name = f"{plugin_id}.{next(self._numbers)}"
        for root in self.roots.values():
            root.mkdir(exist_ok=True)  # again, if something removed it
        memory, pids = self.roots["memory"] / name, self.roots["pids"] / name
        memory.mkdir()
        pids.mkdir()
        if limits.memory_mb is not None:
            (memory / "memory.limit_in_bytes").write_text(str(limits.memory_mb << 20))
        limit = ("max" if limits.max_processes is None
                 else str(limits.max_processes * TASKS_PER_PROCESS))
        (pids / "pids.max").write_text(limit)
        return (str(memory), str(pids))

    @staticmethod
    def oom_kills(groups: tuple[str, ...]) -> int:
        """How many processes the kernel's OOM killer ended in these groups."""
        for group in groups:
            control = Path(group) / "memory.oom_control"
            with contextlib.suppress(OSError, ValueError):
                for line in control.read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        return 0

    @staticmethod
    def remove(groups: tuple[str, ...]) -> bool:
        """Remove a worker's (empty) groups; False while a member is still exiting."""
        return remove_all(groups)

    def close(self) -> None:
        """Remove the supervisor's own groups (their worker groups must be gone)."""
        remove_all([str(path) for path in self.roots.values()])
        self.roots.clear()

    def _make_roots(self, root: Path) -> str:
        """Make the supervisor's group per controller; the reason they are off, or ""."""
        own = _own_groups()
        made: dict[str, Path] = {}
        for controller in CONTROLLERS:
            mount = root / controller
            if controller not in own or not (mount / "cgroup.procs").exists():
                if (root / "cgroup.controllers").exists():
                    return "cgroup v2 only here, which is not supported yet"
                return f"no cgroup v1 '{controller}' controller here"
            parent = mount / own[controller].lstrip("/")
            _remove_stale(parent)
            path = parent / f"spec-kit-runtime-{os.getpid()}"
            try:
                path.mkdir(exist_ok=True)
            except OSError as exc:
                for done in made.values():
                    os.rmdir(done)
                return f"cannot make a '{controller}' cgroup: {exc.strerror}"
            made[controller] = path
        self.roots = made
        return ""


def _own_groups() -> dict[str, str]:
    """This process's group per v1 controller, from /proc/self/cgroup."""
    groups: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                if controller:
                    groups[controller] = path
    return groups


def remove_all(groups: list[str] | tuple[str, ...]) -> bool:
    """Remove empty groups, their empty subgroups first; False if one is still in use."""
    removed = True
    for group in groups:
        path = Path(group)
        with contextlib.suppress(OSError):
            for child in path.iterdir():
                if child.is_dir():
                    removed = remove_all([str(child)]) and removed
        try:
            os.rmdir(path)
        except FileNotFoundError:
            continue
        except OSError:
            removed = False
    return removed


def _remove_stale(parent: Path) -> None:
    """Groups left by supervisors that are gone (killed with their fork server, say)."""
    with contextlib.suppress(OSError):
        for path in parent.glob("spec-kit-runtime-*"):
            pid = path.name.removeprefix("spec-kit-runtime-")
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                remove_all([str(path)])


def join(groups: tuple[str, ...]) -> None:
    """Move this process into ``groups`` (called by a worker before any plugin code)."""
    for group in groups:
        (Path(group) / "cgroup.procs").write_text(str(os.getpid()))


def members(groups: tuple[str, ...]) -> set[int]:
    """Every process in ``groups`` now."""
    found: set[int] = set()
    for group in groups:
        with contextlib.suppress(OSError, ValueError):
            found.update(int(pid) for pid in (Path(group) / "cgroup.procs").read_text().split())
    return found
