"""Fakes of the supervisor's ports, for tests of its parts without processes or sockets.

``Core`` wires the real slot table, router, lifecycle, recovery, start-up and control to a
clock the test moves by hand, an outbox that keeps what is sent, and a worker table whose
workers are plain ``WorkerProcess`` handles: the test plays the fork server and the
workers (``started``, ``hello``, ``answer`` or ``reply`` to one phase, ``exit``). It does by
hand what the loop does between parts (``Supervisor._worker_connected``,
``Supervisor._worker_ended``).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from spec_kit_runtime.errors import RuntimeFailure, from_data
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.facts import facts_of
from spec_kit_runtime.plugins.manifest import parse_manifest_data
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.policy.confinement import plan
from spec_kit_runtime.policy.timers import Timer, Timers
from spec_kit_runtime.supervisor.control import About, ControlOps
from spec_kit_runtime.supervisor.lifecycle import Lifecycle
from spec_kit_runtime.supervisor.ports import Sent
from spec_kit_runtime.supervisor.recovery import Recovery
from spec_kit_runtime.supervisor.router import Router
from spec_kit_runtime.supervisor.slots import PluginSlot, SlotTable
from spec_kit_runtime.supervisor.startup import StartUp
from spec_kit_runtime.supervisor.worker_process import WorkerProcess
from spec_kit_runtime.wire.codec import pack_error, pack_value, unpack_value
from spec_kit_runtime.wire.protocol import Phase, Record, Reply


class FakeClock:
    """Time that moves only when the test says so; due timers run as it moves."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.timers = Timers()

    def now(self) -> float:
        return self.time

    def at(self, when: float, action: Callable[[], None]) -> Timer:
        return self.timers.at(when, action)

    def advance(self, seconds: float) -> None:
        """Move time on, running each timer due on the way at its own time."""
        end = self.time + seconds
        while (due := self.timers.next_due()) is not None and due <= end:
            self.time = max(self.time, due)
            self.timers.run_due(self.time)
        self.time = end


@dataclass
class FakeOutbox:
    """Keeps every record sent; ``outcome`` says what becomes of the next ones."""

    to_workers: list[tuple[str, Record]] = field(default_factory=list)
    to_clients: list[tuple[bytes, Record]] = field(default_factory=list)
    outcome: Sent = Sent.OK

    def to_worker(self, slot: PluginSlot, record: Record) -> Sent:
        if slot.identity is None:
            return Sent.NO_WORKER
        if self.outcome is Sent.OK:
            self.to_workers.append((slot.plugin_id, record))
        return self.outcome

    def to_client(self, identity: bytes, record: Record) -> Sent:
        if self.outcome is Sent.OK:
            self.to_clients.append((identity, record))
        return self.outcome

    def take(self, plugin_id: str) -> list[Record]:
        """The records sent to ``plugin_id``'s worker since the last take."""
        mine = [record for owner, record in self.to_workers if owner == plugin_id]
        self.to_workers = [(o, r) for o, r in self.to_workers if o != plugin_id]
        return mine


@dataclass
class Spawn:
    slot: PluginSlot
    started: Callable[[WorkerProcess], None]
    failed: Callable[[OSError], None]
    abandoned: bool = False


class FakeWorkers:
    """The worker table: spawns are kept for the test to answer; signals are recorded."""

    def __init__(self) -> None:
        self.spawns: list[Spawn] = []
        self.signals: list[tuple[int, int]] = []  # (pid, signal)
        self._next_pid = 5000

    def spawn(self, slot: PluginSlot, started: Callable[[WorkerProcess], None],
              failed: Callable[[OSError], None]) -> int:
        self.spawns.append(Spawn(slot, started, failed))
        return len(self.spawns) - 1

    def abandon(self, tag: int) -> None:
        self.spawns[tag].abandoned = True

    def new_worker(self) -> WorkerProcess:
        self._next_pid += 1
        return WorkerProcess(self._next_pid, lambda pid, sig: self.signals.append((pid, sig)),
                             plan(RuntimeConfig().hardening_for("x"), False, os.getuid()))


def usual_answer(plugin_id: str, phase: Phase, status: str) -> dict[str, Any]:
    """What a worker answers to ``phase`` when it goes well: ``status``, and for a load the
    plugin's facts."""
    answer: dict[str, Any] = {"status": status}
    if phase.phase == "load":
        plugin = SimpleNamespace(metadata=SimpleNamespace(name=plugin_id),
                                 get_config_schema=dict)
        answer["plugin"] = facts_of(plugin)
    return answer


def record_names(records: list[Record]) -> list[str]:
    """Records sent to a worker, in words: a Phase by its phase, others by their type."""
    return [r.phase if isinstance(r, Phase) else type(r).__name__ for r in records]


def manifest(folder: Path, plugin_id: str, dependencies: tuple[str, ...] = (),
             **fields: Any) -> PluginInfo:
    """A plugin's manifest, its (empty) file in ``folder/plugin_id``."""
    root = folder / plugin_id
    root.mkdir(parents=True, exist_ok=True)
    (root / "p.py").write_text("")
    data = {"id": plugin_id, "name": plugin_id.title(), "version": "1.0.0", "file": "p.py",
            "entry_point": "P", "dependencies": list(dependencies), **fields}
    return parse_manifest_data(data, root / "plugin.json", root)


@dataclass
class Answer:
    """What a responder was given."""

    ok: bool | None = None
    body: bytes = b""
    calls: int = 0

    def __call__(self, ok: bool, body: bytes) -> None:
        self.ok, self.body, self.calls = ok, body, self.calls + 1

    @property
    def value(self) -> Any:
        return unpack_value(self.body)

    @property
    def error(self) -> RuntimeFailure:
        assert self.ok is False, (self.ok, self.body)
        return from_data(unpack_value(self.body))


ABOUT: About = {"endpoint": "ipc://fake", "uptime": 1.5, "forkserver_pid": 42,
                "start_method": "fork", "cgroups": {"active": False}, "http": None,
                "log_file": None}
"""What the fake loop says of itself in ``status``."""


def failed_with(answer: Answer, kind: type[RuntimeFailure], *parts: str) -> RuntimeFailure:
    """The error ``answer`` got: exactly ``kind``, its message containing every part."""
    assert answer.calls == 1
    error = answer.error
    assert type(error) is kind, (type(error), error.message)
    for part in parts:
        assert part in error.message, (part, error.message)
    return error


class Core:
    """The supervisor's parts on fake ports."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.slots = SlotTable()
        self.clock = FakeClock()
        self.outbox = FakeOutbox()
        self.workers = FakeWorkers()
        self.events: list[tuple[str, dict[str, object]]] = []
        self.router = Router(self.slots, self.clock, self.outbox, self.config)
        self.lifecycle = Lifecycle(self.slots, self.clock, self.router, self._emit,
                                   self.workers, self.outbox, self.config)
        self.recovery = Recovery(self.lifecycle, self.slots, self.clock, self._emit,
                                 self.config.strategy, self.router.settled)
        self.startup = StartUp(self.lifecycle, self.slots)
        self.shutdowns = 0
        self.control = ControlOps(self.slots, self.lifecycle, self.router, self.startup,
                                  self.clock, lambda: ABOUT, self._shutdown)

    def _emit(self, name: str, data: dict[str, object]) -> None:
        self.events.append((name, data))
        self.router.emit_system(name, data)

    def _shutdown(self) -> None:
        self.shutdowns += 1

    def event_names(self) -> list[str]:
        return [name for name, _ in self.events]

    # -- playing the fork server and the workers -------------------------------------------

    def started(self, plugin_id: str) -> WorkerProcess:
        """The fork server answers the plugin's last spawn: its worker runs."""
        spawn = next(s for s in reversed(self.workers.spawns) if s.slot.plugin_id == plugin_id)
        worker = self.workers.new_worker()
        spawn.started(worker)
        return worker

    def hello(self, plugin_id: str) -> None:
        """The plugin's worker proves its secret (what the worker door does after a Hello)."""
        slot = self.slots[plugin_id]
        assert slot.worker is not None and slot.secret is not None
        slot.secret = None
        slot.identity = slot.worker.identity = f"conn-{slot.worker.pid}".encode()
        self.lifecycle.worker_connected(slot)

    def answer(self, plugin_id: str, status: str = "initialized", ok: bool = True) -> list[str]:
        """Answer every phase sent to the plugin's worker; the last gets ``status`` (or the
        error when not ``ok``). Returns the phases answered."""
        phases = [r for r in self.outbox.take(plugin_id) if isinstance(r, Phase)]
        names = []
        for index, phase in enumerate(phases):
            last = index == len(phases) - 1
            names.append(phase.phase)
            if last and not ok:
                body = pack_value({"type": "LifecycleError", "message": f"{phase.phase} failed"})
                self.router.replied(plugin_id, Reply(phase.cid, False, body))
                continue
            self.reply(plugin_id, phase, usual_answer(plugin_id, phase, status if last
                                                      else "loaded"))
        return names

    def converse(self, plugin_id: str, status: str = "stopped") -> list[str]:
        """Answer every phase sent to the plugin's worker with ``status``, and those sent in
        turn, until no more come. Returns every record sent meanwhile (``record_names``)."""
        sent: list[str] = []
        while records := self.outbox.take(plugin_id):
            sent += record_names(records)
            for phase in (r for r in records if isinstance(r, Phase)):
                self.reply(plugin_id, phase, usual_answer(plugin_id, phase, status))
        return sent

    def reply(self, plugin_id: str, phase: Phase, result: Any) -> None:
        """Answer one phase sent to the plugin's worker with ``result``: its value, or its
        error when it is a RuntimeFailure."""
        if isinstance(result, RuntimeFailure):
            self.router.replied(plugin_id, Reply(phase.cid, False, pack_error(result)))
        else:
            self.router.replied(plugin_id, Reply(phase.cid, True, pack_value(result)))

    def come_back(self, plugin_id: str, sub_id: int, pattern: str) -> None:
        """Answer every phase sent to the plugin's worker as it goes well, up to active; its
        activate registers its handler of ``pattern`` again, as a worker's does."""
        for phase in [r for r in self.outbox.take(plugin_id) if isinstance(r, Phase)]:
            if phase.phase == "activate":
                self.router.table.add(plugin_id, sub_id, pattern, 50, "message")
            status = "active" if phase.phase == "activate" else "loaded"
            self.reply(plugin_id, phase, usual_answer(plugin_id, phase, status))

    def up(self, plugin_id: str, status: str = "initialized") -> None:
        """The spawn asked last for the plugin succeeds, and its phases answer."""
        self.started(plugin_id)
        self.hello(plugin_id)
        self.answer(plugin_id, status)

    def ready(self, info: PluginInfo, active: bool = False) -> PluginSlot:
        """Load the plugin (and activate it when ``active``), its worker answering all."""
        loaded = self.load(info)
        self.up(info.id)
        assert loaded.ok, loaded.body
        if active:
            activated = Answer()
            self.lifecycle.activate(info.id, activated)
            self.answer(info.id, "active")
            assert activated.ok, activated.body
        return self.slots[info.id]

    def exit(self, plugin_id: str, returncode: int = -signal.SIGKILL,
             began: int | None = None) -> None:
        """The plugin's worker ends (what the loop does when the worker table says so),
        having begun the calls up to ``began`` (None: not known)."""
        slot = self.slots[plugin_id]
        worker = slot.worker
        assert worker is not None
        reason = worker.ended(returncode, began=began)
        crash = self.lifecycle.worker_exited(slot, reason)
        if crash is not None:
            self.recovery.worker_ended(slot, reason, crash)

    def load(self, info: PluginInfo, config: dict[str, Any] | None = None) -> Answer:
        answer = Answer()
        self.lifecycle.load(info, config or {}, answer)
        return answer

    def active(self, info: PluginInfo, config: dict[str, Any] | None = None) -> None:
        """Load ``info`` and activate it, its worker answering every phase: it is active."""
        loaded = self.load(info, config)
        self.up(info.id)
        activated = Answer()
        self.lifecycle.activate(info.id, activated)
        self.answer(info.id, "active")
        assert loaded.ok and activated.ok and self.slots[info.id].active

    # -- time ------------------------------------------------------------------------------

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass as on the loop (``Supervisor._poll_once``): at each moment a
        call's deadline or a timer is due, calls past their deadline expire, then the timers
        run."""
        clock, deadlines = self.clock, self.router.deadlines
        end = clock.time + seconds
        while (due := min((d for d in (clock.timers.next_due(), deadlines.next_due())
                           if d is not None), default=None)) is not None and due <= end:
            clock.time = max(clock.time, due)
            self.router.expire(clock.time)
            clock.timers.run_due(clock.time)
        clock.time = end
