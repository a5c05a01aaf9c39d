"""The supervisor's resource watchdog: samples each worker's process tree with psutil.

One timer for all workers, every ``watchdog_interval`` seconds. psutil ``Process``
objects are kept between samples, since ``cpu_percent()`` measures since the previous
call (the first call says 0.0). A worker over its limits is killed, whole tree, with
the reason recorded; its restart policy then sees a LIMIT ending.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psutil

from .limit_judge import LimitJudge, Usage
from .process_tree import descendants

if TYPE_CHECKING:
    from .supervisor import Supervisor

log = logging.getLogger(__name__)
_MIB = 1024 * 1024


class Watchdog:
    """Samples usage of every running worker and enforces the watched limits."""

    def __init__(self, hub: Supervisor) -> None:
        self.hub = hub
        self._processes: dict[int, psutil.Process] = {}  # every pid of the last sample
        self._judges: dict[int, LimitJudge] = {}  # by worker pid: a new worker starts afresh

    def start(self) -> None:
        self.hub.timers.at(self.hub.now() + self.hub.config.watchdog_interval, self._tick)

    def _tick(self) -> None:
        now = self.hub.now()
        known, self._processes = self._processes, {}
        judges, self._judges = self._judges, {}
        for slot in list(self.hub.lifecycle.slots.values()):
            worker = slot.worker
            if worker is None:
                continue
            usage = self._sample(worker.pid, now, known)
            if usage is None:
                continue
            slot.usage = usage
            judge = judges.get(worker.pid) or LimitJudge(slot.limits.watched())
            self._judges[worker.pid] = judge
            violation = judge.observe(usage)
            if violation:
                log.error("plugin %s: %s; killing its worker", slot.plugin_id, violation)
                worker.kill_for(violation, "limit")
        self.start()

    def _sample(self, pid: int, now: float, known: dict[int, psutil.Process]) -> Usage | None:
        """The tree's usage, or None when its root is gone."""
        rss = cpu = 0.0
        count = files = 0
        for member in (pid, *descendants(pid)):
            try:
                process = known.get(member) or psutil.Process(member)
                with process.oneshot():
                    rss += process.memory_info().rss
                    cpu += process.cpu_percent(None)  # a new handle reads 0.0 the first time
                    files += process.num_fds()
            except psutil.Error:
                if member == pid:
                    return None
                continue  # it just exited
            self._processes[member] = process
            count += 1
        return Usage(at=now, rss_mb=rss / _MIB, cpu_percent=cpu, processes=count,
                     open_files=files)
