"""The worker table: every worker process the supervisor has, by pid, and the spawns asked.

Workers are forked by the fork server (``forkserver_link``), which answers each spawn and
reports each exit on its control socket, read in the loop's poll; so a death is seen the
moment it happens. Here a spawn gets its bootstrap, its confinement and its cgroups, an
answer becomes a ``WorkerProcess`` with its output captured, and an exit (or the fork
server's own death, which takes its workers with it) becomes an ``ExitReason`` handed to
``ended``. The lifecycle asks for workers through ``spawn`` and ``abandon`` (``ports.Spawner``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from spec_kit_runtime.linux import cgroups
from spec_kit_runtime.linux.cgroups import Cgroups
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.data_dir import default_data_dir, plugin_data_dir
from spec_kit_runtime.policy.confinement import WorkerConfinement, plan
from spec_kit_runtime.policy.exits import ExitKind, ExitReason
from spec_kit_runtime.wire.bootstrap import Bootstrap

from .forkserver_link import ForkServerLink, SpawnAnswer
from .output_capture import OutputCapture
from .ports import Clock
from .slots import PluginSlot
from .worker_door import WorkerDoor
from .worker_process import WorkerProcess

log = logging.getLogger(__name__)
Ended = Callable[[PluginSlot, WorkerProcess, ExitReason], None]
"""Told of each worker's end: its slot, the worker, why it ended."""


@dataclass(frozen=True, slots=True)
class _Spawning:
    """A spawn asked of the fork server and not answered yet, and whom to tell."""

    slot: PluginSlot
    confinement: WorkerConfinement  # what the worker is asked to apply to itself
    groups: tuple[str, ...]
    started: Callable[[WorkerProcess], None]
    failed: Callable[[OSError], None]


class WorkerTable:
    """Spawns workers through the fork server and turns its reports into ends."""

    def __init__(self, config: RuntimeConfig, workers_endpoint: str,
                 forkserver: ForkServerLink, clock: Clock, output: OutputCapture,
                 door: WorkerDoor, watch: Callable[[int], None],
                 unwatch: Callable[[int], None], ended: Ended) -> None:
        """``watch``/``unwatch``: add a file descriptor of the fork server's to the loop's
        poll, or take it off; ``ended``: told of every worker's end."""
        self.config = config
        self.forkserver = forkserver
        self.forkserver.spawn_timeout = config.start_timeout
        self.cgroups = Cgroups(config.cgroups)
        self._endpoint = workers_endpoint
        self._clock, self._output, self._door = clock, output, door
        self._watch, self._unwatch, self._ended = watch, unwatch, ended
        self._by_pid: dict[int, tuple[PluginSlot, WorkerProcess]] = {}
        self._spawning: dict[int, _Spawning] = {}  # by the fork server's tag
        self._watch_forkserver()

    def pids(self) -> list[int]:
        """Every running worker's pid."""
        return list(self._by_pid)

    def _watch_forkserver(self) -> None:
        """Start the fork server unless it runs, and wait on it in the loop's poll."""
        if not self.forkserver.running:
            self.forkserver.start()
        self._watch(self.forkserver.control_fd)
        self._watch(self.forkserver.pidfd)

    # -- spawning (ports.Spawner) ----------------------------------------------------------

    def spawn(self, slot: PluginSlot, started: Callable[[WorkerProcess], None],
              failed: Callable[[OSError], None]) -> int:
        """Ask the fork server for the worker of ``slot`` without waiting: ``started`` (or
        ``failed``) is called from the loop when it answers. Returns the spawn's tag, for
        ``abandon``; OSError if it cannot even be asked."""
        if not self.forkserver.running:  # it died: a new one
            self._watch_forkserver()
        asked = plan(self.config.hardening_for(slot.plugin_id), slot.info.network, os.getuid())
        groups = self.cgroups.create(slot.plugin_id, slot.limits)
        try:
            tag = self.forkserver.request_spawn(self._bootstrap(slot, groups, asked),
                                                slot.info.start_method or self.config.start_method)
        except BaseException:
            Cgroups.remove(groups)
            raise
        self._spawning[tag] = _Spawning(slot, asked, groups, started, failed)
        return tag

    def abandon(self, tag: int) -> None:
        """Give up on a spawn not answered yet (its worker, if one comes, is killed)."""
        spawning = self._spawning.pop(tag, None)
        if spawning is not None:
            self._door.drop_early(spawning.slot.plugin_id)
            self.forkserver.abandon(tag)
            self._remove_cgroups(spawning.groups)

    def _bootstrap(self, slot: PluginSlot, groups: tuple[str, ...], asked: WorkerConfinement
                   ) -> Bootstrap:
        assert slot.secret is not None
        owner = None if asked.uid is None or asked.gid is None else (asked.uid, asked.gid)
        data = plugin_data_dir(self.config.data_dir or default_data_dir(), slot.plugin_id, owner)
        return Bootstrap(
            endpoint=self._endpoint, plugin_id=slot.plugin_id,
            secret=slot.secret, parent_pid=self.forkserver.pid,
            plugin_file=str(slot.info.path), entry_point=slot.info.entry_point,
            sandbox=slot.info.sandbox_enabled, scope=slot.scope.patterns,
            max_message_bytes=self.config.max_message_bytes,
            request_timeout=self.config.request_timeout, cgroups=groups,
            plugin_dir=str(slot.info.root), data_dir=str(data), landlock=asked.landlock,
            network=asked.network, own_network=asked.own_network, uid=asked.uid, gid=asked.gid,
            **slot.limits.rlimits(),
        )

    # -- the fork server's reports ---------------------------------------------------------

    def news(self) -> None:
        """Take what the fork server has reported: spawn answers and workers' exits."""
        for told in self.forkserver.news():
            if isinstance(told, SpawnAnswer):
                self._spawned(told)
            else:
                self._worker_ended(told.pid, told.returncode, None, told.began_call())

    def _spawned(self, answer: SpawnAnswer) -> None:
        spawning = self._spawning.pop(answer.tag, None)  # the link drops answers given up on
        if spawning is None:  # not expected: such a worker is nobody's
            log.error("internal error: an answer to spawn %d, not asked", answer.tag)
            if answer.pid:
                self.forkserver.signal(answer.pid, signal.SIGKILL)
                for fd in (answer.stdout, answer.stderr):
                    os.close(fd)
            return
        slot = spawning.slot
        if not answer.pid:
            self._door.drop_early(slot.plugin_id)
            Cgroups.remove(spawning.groups)
            spawning.failed(OSError(f"the fork server could not start it: {answer.error}"))
            return
        worker = WorkerProcess(answer.pid, self.forkserver.signal, spawning.confinement,
                               spawning.groups)
        self._by_pid[answer.pid] = (slot, worker)
        self._output.add(slot.plugin_id, slot.output, answer.stdout, answer.stderr)
        log.info("plugin %s: worker pid %d started", slot.plugin_id, answer.pid)
        spawning.started(worker)
        if slot.worker is worker:  # taken (not given up on): its Hello may have come first
            self._door.spawned(slot)

    def forkserver_died(self) -> None:
        """Its workers die with it (parent-death signal): each ends as a crash."""
        self.news()
        self._unwatch(self.forkserver.control_fd)
        self._unwatch(self.forkserver.pidfd)
        code = self.forkserver.reap()
        # Taken first: ending a worker below may go on to a spawn, asked of the next one.
        pending, self._spawning = list(self._spawning.values()), {}
        log.error("the fork server exited (code %d); its workers are gone", code)
        for pid, (_, worker) in list(self._by_pid.items()):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # its group, and with cgroups all it started:
            for member in cgroups.members(worker.cgroups):  # no fork server to do it now
                with contextlib.suppress(OSError):
                    os.kill(member, signal.SIGKILL)
            self._worker_ended(pid, -signal.SIGKILL, "the fork server exited")
        for spawning in pending:
            self._door.drop_early(spawning.slot.plugin_id)
            Cgroups.remove(spawning.groups)
            spawning.failed(OSError("the fork server exited"))

    def _worker_ended(self, pid: int, returncode: int, cause: str | None,
                      began: int | None = None) -> None:
        entry = self._by_pid.pop(pid, None)
        if entry is None:
            return
        slot, worker = entry
        kind = None
        if (cause is None and returncode == -signal.SIGKILL and worker.cgroups
                and Cgroups.oom_kills(worker.cgroups)):
            cause, kind = (f"memory limit {slot.limits.memory_mb} MiB exceeded "
                           "(the kernel's OOM killer, in the worker's cgroup)"), ExitKind.LIMIT
        self._remove_cgroups(worker.cgroups)
        self._ended(slot, worker, worker.ended(returncode, cause, kind, began))

    def _remove_cgroups(self, groups: tuple[str, ...], tries: int = 20) -> None:
        """Remove an ended worker's groups, retrying while its last members exit."""
        if Cgroups.remove(groups):
            return
        if tries:
            self._clock.at(self._clock.now() + 0.05,
                           lambda: self._remove_cgroups(groups, tries - 1))
        else:
            log.warning("could not remove cgroups %s: still in use", ", ".join(groups))

    def close(self, timeout: float) -> None:
        """Stop the fork server, which kills and reaps whatever is left below it."""
        for _, worker in self._by_pid.values():
            worker.expected_exit = True
        self.forkserver.stop(timeout=timeout)
        for _, worker in self._by_pid.values():
            Cgroups.remove(worker.cgroups)
        self._by_pid.clear()
        self.cgroups.close()
