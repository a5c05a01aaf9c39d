"""The lifecycle and its worker steps on fake ports (supervisor_fakes): every operation's
steps, what it sends to the worker, the answers it gives, the signals of a stop's budget as
the clock moves, and how operations queue, settle and interrupt each other. No process,
no socket: the test plays the fork server and the worker."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spec_kit_runtime.errors import (
    DeadlineExceeded,
    LifecycleError,
    PluginStateError,
    ProtocolError,
    RequirementError,
    RuntimeFailure,
    WorkerDiedError,
)
from spec_kit_runtime.plugins.config import config_from_data
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.wire.codec import unpack_value
from spec_kit_runtime.wire.protocol import Phase
from supervisor_fakes import Answer, Core, manifest, record_names, usual_answer

KILL, TERM = signal.SIGKILL, signal.SIGTERM


@pytest.fixture
def core() -> Core:
    return Core()


@pytest.fixture
def a(tmp_path: Path) -> PluginInfo:
    return manifest(tmp_path, "a")


def configured(**runtime: Any) -> Core:
    return Core(config_from_data({"runtime": runtime}, Path("c.yaml")))


def pending_phases(core: Core, plugin_id: str) -> list[str]:
    """The phases sent to the plugin's worker and not taken yet (left for ``answer``)."""
    return [r.phase for owner, r in core.outbox.to_workers
            if owner == plugin_id and isinstance(r, Phase)]


def asked(core: Core, what: Callable[[str, Answer], None], plugin_id: str = "a") -> Answer:
    answer = Answer()
    what(plugin_id, answer)
    return answer


def stopping(core: Core, plugin_id: str = "a") -> Answer:
    """Ask for a stop and answer its phases, up to the Stop record (the worker not gone)."""
    stopped = asked(core, core.lifecycle.stop, plugin_id)
    assert core.converse(plugin_id)[-1:] == ["Stop"]
    return stopped


# -- load ------------------------------------------------------------------------------------


def test_load_spawns_with_a_fresh_secret_then_sends_load_and_initialize_at_once(
        core: Core, a: PluginInfo) -> None:
    loaded = core.load(a, {"colour": "blue"})
    slot = core.slots["a"]
    assert slot.status == "loading" and slot.secret is not None and len(slot.secret) == 32
    assert len(core.workers.spawns) == 1 and loaded.ok is None
    worker = core.started("a")
    assert slot.worker is worker and core.outbox.to_workers == []  # no phase before Hello

    core.hello("a")
    assert core.events == [("plugin_started", {"plugin": "a", "pid": worker.pid})]
    load, initialize = (r for _, r in core.outbox.to_workers)
    assert isinstance(load, Phase) and isinstance(initialize, Phase)
    assert (load.phase, initialize.phase) == ("load", "initialize")
    assert unpack_value(initialize.body) == {"colour": "blue"} and load.body == b""
    assert core.answer("a") == ["load", "initialize"]

    assert loaded.ok and loaded.calls == 1
    assert loaded.value["id"] == "a" and loaded.value["status"] == "initialized"
    assert loaded.value["plugin"]["metadata"]["name"] == "a" and loaded.value["generation"] == 1
    assert slot.target == "initialized" and slot.loaded and slot.busy is None


def test_each_spawn_gets_its_own_secret(core: Core, a: PluginInfo) -> None:
    core.load(a)
    first = core.slots["a"].secret
    core.up("a")
    restarted = asked(core, core.lifecycle.restart)
    core.answer("a")  # shutdown
    core.exit("a", 0)
    second = core.slots["a"].secret
    assert first is not None and second is not None and first != second
    core.up("a", "active")
    assert restarted.ok and restarted.value["generation"] == 2


def _phase_error(phase: str) -> RuntimeFailure:
    return LifecycleError(f"{phase} raised ValueError", plugin="a", phase=phase)


@pytest.mark.parametrize(("failing", "answer", "error_type", "message"), [
    ("load", _phase_error("load"), LifecycleError, "load raised ValueError"),
    ("initialize", _phase_error("initialize"), LifecycleError, "initialize raised ValueError"),
    ("load", {"status": ""}, ProtocolError,
     "plugin 'a' answered its load phase with no usable status"),
    ("initialize", {"state": "initialized"}, ProtocolError,
     "plugin 'a' answered its initialize phase with no usable status"),
    ("load", {"status": "loaded", "plugin": "not bytes"}, LifecycleError,
     "plugin 'a' reported unusable metadata: facts must be bytes, not str"),
])
def test_a_failed_phase_fails_the_load_and_kills_the_half_started_worker(
        core: Core, a: PluginInfo, failing: str, answer: object,
        error_type: type[RuntimeFailure], message: str) -> None:
    loaded = core.load(a)
    worker = core.started("a")
    core.hello("a")
    for phase in [r for r in core.outbox.take("a") if isinstance(r, Phase)]:
        if phase.phase == failing:
            core.reply("a", phase, answer)
            break
        core.reply("a", phase, usual_answer("a", phase, "loaded"))

    error = loaded.error
    assert type(error) is error_type and error.message == message
    slot = core.slots["a"]
    assert slot.status == "error" and slot.last_error == message and slot.target is None
    assert core.workers.signals == [(worker.pid, KILL)] and worker.expected_exit
    core.exit("a")  # the SIGKILL it was sent: expected, so no crash and no restart
    assert "plugin_crashed" not in core.event_names() and slot.status == "error"
    core.clock.advance(60)
    assert len(core.workers.spawns) == 1


@pytest.mark.parametrize("forked", [False, True], ids=["no worker yet", "worker, no Hello"])
def test_a_worker_not_connecting_within_start_timeout_fails_the_load(
        tmp_path: Path, forked: bool) -> None:
    core = configured(start_timeout=2)
    loaded = core.load(manifest(tmp_path, "a"))
    worker = core.started("a") if forked else None
    core.clock.advance(1.999)
    assert loaded.ok is None and not core.workers.spawns[0].abandoned

    core.clock.advance(0.001)
    error = loaded.error
    assert isinstance(error, DeadlineExceeded)
    assert error.message == "plugin 'a': worker did not connect within 2s"
    assert error.context == {"plugin": "a", "phase": "start"}
    assert core.workers.spawns[0].abandoned and core.slots["a"].status == "error"
    if worker is not None:  # it came, but too late: killed
        assert core.workers.signals == [(worker.pid, KILL)]
    else:  # it comes after the load gave up: nobody's, killed on arrival
        assert core.workers.signals == []
        late = core.started("a")
        assert core.workers.signals == [(late.pid, KILL)] and core.slots["a"].worker is None


def test_a_phase_not_answered_within_phase_timeout_fails_the_load(tmp_path: Path) -> None:
    core = configured(phase_timeout=3)
    loaded = core.load(manifest(tmp_path, "a"))
    worker = core.started("a")
    core.hello("a")
    core.clock.advance(2.999)
    core.router.expire(core.clock.now())
    assert loaded.ok is None
    core.clock.advance(0.001)
    core.router.expire(core.clock.now())
    error = loaded.error
    assert isinstance(error, DeadlineExceeded)
    assert error.message == "plugin 'a' did not answer load phase within 3s"
    assert core.slots["a"].status == "error" and core.workers.signals == [(worker.pid, KILL)]


def test_later_phases_are_postponed_as_earlier_ones_answer(tmp_path: Path) -> None:
    core = configured(phase_timeout=3)
    loaded = core.load(manifest(tmp_path, "a"))
    core.started("a")
    core.hello("a")
    load, _initialize = (r for r in core.outbox.take("a") if isinstance(r, Phase))
    core.clock.advance(2)
    core.reply("a", load, usual_answer("a", load, "loaded"))  # initialize: 3 s from now
    core.clock.advance(2.999)
    core.router.expire(core.clock.now())
    assert loaded.ok is None
    core.clock.advance(0.001)
    core.router.expire(core.clock.now())
    assert isinstance(loaded.error, DeadlineExceeded)
    assert loaded.error.message == "plugin 'a' did not answer initialize phase within 3s"
    assert core.slots["a"].facts is not None  # the load's answer was taken


def test_a_requirement_not_installed_refuses_the_load_before_any_spawn(
        core: Core, tmp_path: Path) -> None:
    loaded = core.load(manifest(tmp_path, "a", ("zz-not-installed-anywhere>=1.0",)))
    error = loaded.error
    assert isinstance(error, RequirementError) and error.context["phase"] == "load"
    assert "zz-not-installed-anywhere>=1.0" in error.message
    assert core.workers.spawns == [] and core.slots["a"].status == "error"


def test_loading_a_plugin_whose_dependency_is_not_loaded_is_refused(
        core: Core, tmp_path: Path) -> None:
    with pytest.raises(PluginStateError) as caught:
        core.load(manifest(tmp_path, "b", ("a", "c")))
    assert caught.value.message == ("plugin 'b' depends on 'a', 'c', which is not loaded: "
                                    "load dependencies first")
    assert "b" not in core.slots and core.workers.spawns == []


@pytest.mark.parametrize("active", [False, True])
def test_loading_a_loaded_plugin_again_answers_what_it_is(
        core: Core, a: PluginInfo, active: bool) -> None:
    core.ready(a, active=active)
    again = core.load(a)  # 1.0: not an error
    assert again.ok and again.value["status"] == ("active" if active else "initialized")
    assert again.value["generation"] == 1 and again.value["plugin"]["metadata"]["name"] == "a"
    assert len(core.workers.spawns) == 1 and core.outbox.to_workers == []


def test_loading_an_id_again_from_another_path_is_refused(
        core: Core, a: PluginInfo, tmp_path: Path) -> None:
    core.ready(a)
    other = manifest(tmp_path / "elsewhere", "a")
    with pytest.raises(PluginStateError) as caught:
        core.load(other)
    assert caught.value.message == (f"plugin 'a' is loaded from {a.path}, not {other.path}: "
                                    "unload it first")
    assert core.slots["a"].info is a and len(core.workers.spawns) == 1


def test_loading_a_plugin_that_is_loading_is_refused(core: Core, a: PluginInfo) -> None:
    core.load(a)
    with pytest.raises(PluginStateError) as caught:
        core.load(a)
    assert caught.value.message == ("plugin 'a' cannot be loaded now: it is loading "
                                    "(load in progress)")
    assert len(core.workers.spawns) == 1


def test_loading_again_after_a_failed_load_waits_for_the_killed_worker(
        core: Core, a: PluginInfo) -> None:
    core.load(a)
    core.started("a")
    core.hello("a")
    core.answer("a", ok=False)
    slot = core.slots["a"]
    again = core.load(a)
    assert core.slots["a"] is slot and slot.busy == "load" and len(core.workers.spawns) == 1
    core.exit("a")  # the SIGKILLed worker is gone: now the new one
    assert len(core.workers.spawns) == 2
    core.up("a")
    assert again.ok and again.value["generation"] == 2


# -- activate, deactivate ---------------------------------------------------------------------


def test_activate_then_deactivate(core: Core, a: PluginInfo) -> None:
    slot = core.ready(a)
    core.router.table.add("a", 1, "command:a:stale", 0, "message")
    activated = asked(core, core.lifecycle.activate)
    assert core.router.table.count("a") == 0  # stale routes dropped before the phase
    assert core.answer("a", "active") == ["activate"]
    assert activated.value == {"id": "a", "status": "active"}  # no facts: same worker
    assert slot.target == "active" and slot.active
    assert core.events[-1] == ("plugin_active", {"plugin": "a", "pid": slot.worker.pid})
    core.router.table.add("a", 3, "command:a:live", 0, "message")
    again = asked(core, core.lifecycle.activate)
    assert isinstance(again.error, PluginStateError)
    assert core.router.table.count("a") == 1  # a refused activate costs no routes

    deactivated = asked(core, core.lifecycle.deactivate)
    assert core.router.table.count("a") == 1  # dropped only once the phase has answered
    assert core.answer("a", "initialized") == ["deactivate"]
    assert deactivated.value == {"id": "a", "status": "initialized"}
    assert slot.target == "initialized" and core.router.table.count("a") == 0
    assert core.event_names() == ["plugin_started", "plugin_active"]


def _stopped(core: Core) -> None:
    stopping(core)
    core.exit("a", 0)


@pytest.mark.parametrize(("before", "operation", "status", "message"), [
    ("active", "activate", "active", "plugin 'a' is already active"),
    ("initialized", "start", "initialized",
     "plugin 'a' is already running (state initialized)"),
    # no worker to leave alone: after_failure marks the plugin "error"
    ("stopped", "activate", "error",
     "plugin 'a' has no running worker (state stopped)"),
    ("stopped", "deactivate", "error",
     "plugin 'a' has no running worker (state stopped)"),
])
def test_an_operation_refused_in_the_wrong_state_touches_no_worker(
        core: Core, a: PluginInfo, before: str, operation: str, status: str,
        message: str) -> None:
    slot = core.ready(a, active=before == "active")
    if before == "stopped":
        _stopped(core)
    events = list(core.events)
    refused = asked(core, getattr(core.lifecycle, operation))
    assert isinstance(refused.error, PluginStateError) and refused.error.message == message
    assert slot.status == status and slot.last_error == message and slot.busy is None
    assert core.outbox.to_workers == [] and core.workers.signals == []
    assert len(core.workers.spawns) == 1 and core.events == events


@pytest.mark.parametrize("operation", ["activate", "deactivate", "stop", "unload", "start",
                                       "restart", "after_current"])
def test_an_operation_on_an_unknown_plugin_is_refused_at_once(
        core: Core, operation: str) -> None:
    answer = Answer()
    with pytest.raises(PluginStateError, match=r"^plugin 'zz' is not loaded$"):
        getattr(core.lifecycle, operation)("zz", answer)
    assert answer.calls == 0


# -- stop, unload, start, restart --------------------------------------------------------------


@pytest.mark.parametrize(("active", "phases"), [
    (True, ["deactivate", "shutdown"]),
    (False, ["shutdown"]),
])
def test_stop_runs_the_phases_then_sends_stop_and_waits_for_the_exit(
        core: Core, a: PluginInfo, active: bool, phases: list[str]) -> None:
    slot = core.ready(a, active=active)
    worker = slot.worker
    assert worker is not None
    stopped = asked(core, core.lifecycle.stop)
    assert core.converse("a") == [*phases, "Stop"] and worker.expected_exit
    assert stopped.ok is None and slot.status == "stopped"  # as its shutdown said

    core.clock.advance(1)
    core.exit("a", 0)
    assert stopped.value == {"id": "a", "status": "stopped"}
    assert slot.status == "stopped" and slot.target is None and slot.worker is None
    assert core.events[-1] == ("plugin_stopped", {"plugin": "a", "how": "stop",
                                                  "exit": "exited with code 0"})
    assert "plugin_crashed" not in core.event_names()
    core.clock.advance(60)  # its exit in time cancelled the budget: no signals, ever
    assert core.workers.signals == [] and core.clock.timers.next_due() is None


def test_a_stop_whose_phases_hang_sends_sigterm_then_sigkill_on_the_budget(tmp_path: Path) -> None:
    core = configured(stop_timeout=5)
    slot = core.ready(manifest(tmp_path, "a"), active=True)
    pid = slot.worker.pid if slot.worker else 0
    stopped = asked(core, core.lifecycle.stop)
    assert record_names(core.outbox.take("a")) == ["deactivate"]  # never answered

    core.clock.advance(4.999)
    core.router.expire(core.clock.now())
    assert core.workers.signals == [] and stopped.ok is None
    core.clock.advance(0.001)
    assert core.workers.signals == [(pid, TERM)]
    core.router.expire(core.clock.now())  # deactivate: at most the budget; shutdown skipped
    assert slot.last_error == "plugin 'a' did not answer deactivate phase within 5s"
    assert record_names(core.outbox.take("a")) == ["Stop"]

    core.clock.advance(4.999)
    assert core.workers.signals == [(pid, TERM)]
    core.clock.advance(0.001)
    assert core.workers.signals == [(pid, TERM), (pid, KILL)]
    core.exit("a")
    assert stopped.ok and slot.status == "stopped"
    assert "plugin_crashed" not in core.event_names()  # the SIGTERM made its end expected


@pytest.mark.parametrize(("exits_after", "signals"), [
    (4.0, []),
    (7.0, [TERM]),
    (12.0, [TERM, KILL]),
])
def test_a_worker_that_ignores_stop_gets_signals_on_the_budget(
        tmp_path: Path, exits_after: float, signals: list[signal.Signals]) -> None:
    core = configured(stop_timeout=5)
    slot = core.ready(manifest(tmp_path, "a"))
    pid = slot.worker.pid if slot.worker else 0
    stopped = stopping(core)  # answered at once: only the Stop is left
    core.clock.advance(exits_after)
    assert stopped.ok is None
    core.exit("a", 0 if not signals else -signals[-1])
    assert stopped.ok and slot.status == "stopped"
    assert core.clock.timers.next_due() is None  # what was left of the budget: cancelled
    core.clock.advance(60)
    assert core.workers.signals == [(pid, sig) for sig in signals]


@pytest.mark.parametrize(("ends_in", "sent", "term_at", "kill_at"), [
    (2.0, ["deactivate"], 2.0, 7.0),  # the deactivate gets what is left: 2 s, not 30
    (-1.0, ["Stop"], 0.0, 4.0),  # spent already (its dependents took it): no orderly part
])
def test_a_shutdown_bounds_every_stop_by_its_own_end(
        tmp_path: Path, ends_in: float, sent: list[str], term_at: float,
        kill_at: float) -> None:
    core = configured(stop_timeout=5)
    slot = core.ready(manifest(tmp_path, "a"), active=True)
    pid = slot.worker.pid if slot.worker else 0
    core.lifecycle.stops_end_by = core.clock.now() + ends_in
    stopped = asked(core, core.lifecycle.stop)
    assert record_names(core.outbox.take("a")) == sent
    begun = core.clock.now()

    def signals_at(moment: float) -> list[tuple[int, int]]:
        core.clock.advance(begun + moment - core.clock.now())
        core.router.expire(core.clock.now())
        return core.workers.signals

    if term_at:
        assert signals_at(term_at - 0.001) == []
    assert signals_at(term_at) == [(pid, TERM)]
    if sent == ["deactivate"]:
        assert slot.last_error == "plugin 'a' did not answer deactivate phase within 2s"
        assert record_names(core.outbox.take("a")) == ["Stop"]  # the shutdown: skipped
    assert signals_at(kill_at - 0.001) == [(pid, TERM)]
    assert signals_at(kill_at) == [(pid, TERM), (pid, KILL)]
    core.exit("a")
    assert stopped.ok and slot.status == "stopped"


def test_a_worker_dying_in_the_stops_shutdown_phase_does_not_fail_the_stop(
        core: Core, a: PluginInfo) -> None:
    core.ready(a)
    stopped = asked(core, core.lifecycle.stop)
    assert pending_phases(core, "a") == ["shutdown"]
    core.exit("a")  # killed before it answered
    assert stopped.value == {"id": "a", "status": "stopped"}
    assert core.slots["a"].last_exit == "killed by SIGKILL"
    core.clock.advance(60)
    assert core.workers.signals == [] and core.clock.timers.next_due() is None
    assert len(core.workers.spawns) == 1  # a stopped plugin is not restarted


def test_a_worker_dying_in_the_stops_shutdown_phase_leaves_the_plugin_stopped(
        core: Core, a: PluginInfo) -> None:
    core.ready(a)
    stopped = asked(core, core.lifecycle.stop)
    core.exit("a")
    assert stopped.value["status"] == "stopped"
    assert core.slots["a"].status == "stopped"


def test_a_start_queued_behind_a_stop_is_not_failed_by_the_old_workers_death(
        core: Core, a: PluginInfo) -> None:
    """The old worker dies in the stop's deactivate: the stop goes on and ends, the start
    queued behind it begins at once, and that death is not the start's."""
    core.ready(a, active=True)
    stopped = asked(core, core.lifecycle.stop)
    started = asked(core, core.lifecycle.start)
    assert pending_phases(core, "a") == ["deactivate"]
    core.exit("a", 1)
    assert stopped.value == {"id": "a", "status": "stopped"}
    assert started.ok is None and len(core.workers.spawns) == 2  # the start's own worker
    core.up("a", "active")
    assert started.ok and core.slots["a"].status == "active"
    assert core.event_names()[-4:] == ["plugin_crashed", "plugin_stopped", "plugin_started",
                                       "plugin_active"]


def test_unload_forgets_the_plugin_and_fails_what_queued_behind_it(
        core: Core, a: PluginInfo) -> None:
    slot = core.ready(a, active=True)
    core.router.table.add("a", 1, "command:a:go", 0, "message")
    unloaded = asked(core, core.lifecycle.unload)
    activated = asked(core, core.lifecycle.activate)
    settled = asked(core, core.lifecycle.after_current)
    assert [name for name, _, _ in slot.ops] == ["activate", "settle"]
    assert core.answer("a") == ["deactivate"]
    assert core.answer("a") == ["shutdown"]
    assert record_names(core.outbox.take("a")) == ["Stop"]
    core.exit("a", 0)

    assert unloaded.value == {"id": "a", "status": "unloaded"}
    assert "a" not in core.slots and core.router.table.count("a") == 0
    assert core.events[-1] == ("plugin_stopped", {"plugin": "a", "how": "unload",
                                                  "exit": "exited with code 0"})
    for answer, what in ((activated, "activate"), (settled, "settle")):
        assert isinstance(answer.error, PluginStateError)
        assert answer.error.message == f"plugin 'a' was unloaded before {what} could run"
    assert not slot.ops


def test_a_plugin_whose_load_failed_can_be_unloaded(core: Core, a: PluginInfo) -> None:
    core.load(a)
    core.started("a")
    core.hello("a")
    core.answer("a", ok=False)
    core.exit("a")
    unloaded = asked(core, core.lifecycle.unload)
    assert unloaded.value == {"id": "a", "status": "unloaded"} and "a" not in core.slots
    assert core.outbox.to_workers == []


def test_start_after_stop_runs_load_initialize_and_activate_at_once(
        core: Core, a: PluginInfo) -> None:
    slot = core.ready(a, active=True)
    _stopped(core)
    started = asked(core, core.lifecycle.start)
    assert slot.status == "loading" and len(core.workers.spawns) == 2
    worker = core.started("a")
    core.hello("a")
    assert core.answer("a", "active") == ["load", "initialize", "activate"]
    assert started.ok and started.value["status"] == "active"
    assert started.value["generation"] == 2 and started.value["plugin"] is not None
    assert slot.target == "active" and slot.active and slot.worker is worker
    assert core.event_names()[-2:] == ["plugin_started", "plugin_active"]


def test_start_begins_a_fresh_restart_history(tmp_path: Path) -> None:
    core = Core(config_from_data({"runtime": {"restart": {"max_restarts": 1}}}, Path("c")))
    core.ready(manifest(tmp_path, "a"), active=True)
    core.exit("a")
    core.clock.advance(0)
    core.up("a", "active")  # restarted once: max_restarts spent
    _stopped(core)
    asked(core, core.lifecycle.start)
    core.up("a", "active")
    core.exit("a")  # without a fresh history this would be the second restart: given up
    assert core.slots["a"].status == "restarting" and "plugin_failed" not in core.event_names()


def test_restart_runs_the_stop_steps_then_the_start_steps(core: Core, a: PluginInfo) -> None:
    slot = core.ready(a, active=True)
    old = slot.worker
    assert old is not None
    events = len(core.events)
    restarted = asked(core, core.lifecycle.restart)
    assert core.answer("a") == ["deactivate"]
    assert core.answer("a") == ["shutdown"]
    assert record_names(core.outbox.take("a")) == ["Stop"] and old.expected_exit
    assert len(core.workers.spawns) == 1  # not before the old worker is gone
    core.exit("a", 0)
    assert len(core.workers.spawns) == 2
    core.started("a")
    core.hello("a")
    assert core.answer("a", "active") == ["load", "initialize", "activate"]
    assert restarted.value["status"] == "active" and restarted.value["generation"] == 2
    assert slot.target == "active" and slot.worker is not old
    assert core.event_names()[events:] == ["plugin_started", "plugin_active"]
    assert core.workers.signals == []


# -- queueing, settling, interrupting -----------------------------------------------------------


def test_operations_queue_per_plugin_and_run_in_order(
        core: Core, a: PluginInfo, tmp_path: Path) -> None:
    order: list[str] = []

    def noted(name: str) -> Callable[[bool, bytes], None]:
        def respond(ok: bool, _body: bytes) -> None:
            order.append(f"{name} {'ok' if ok else 'failed'}")
        return respond

    core.lifecycle.load(a, {}, noted("load"))
    core.lifecycle.activate("a", noted("activate"))
    core.lifecycle.deactivate("a", noted("deactivate"))
    core.lifecycle.after_current("a", noted("settle"))
    snapshot = core.slots["a"].snapshot(core.clock.now(), ())
    assert snapshot.busy == "load"
    assert snapshot.queued == ("activate", "deactivate", "settle")
    b = core.load(manifest(tmp_path, "b"))  # another plugin does not wait for them
    assert [s.slot.plugin_id for s in core.workers.spawns] == ["a", "b"]

    core.up("a")
    assert order == ["load ok"] and pending_phases(core, "a") == ["activate"]
    core.answer("a", "active")
    assert order == ["load ok", "activate ok"] and pending_phases(core, "a") == ["deactivate"]
    core.answer("a", "initialized")
    assert order == ["load ok", "activate ok", "deactivate ok", "settle ok"]
    assert core.slots["a"].busy is None and b.ok is None


def test_after_current_answers_once_the_operations_asked_have_run(
        core: Core, a: PluginInfo) -> None:
    loaded = core.load(a)
    settled = asked(core, core.lifecycle.after_current)
    assert settled.ok is None
    core.up("a")
    assert loaded.ok and settled.value == {"id": "a", "status": "initialized"}
    assert core.slots["a"].target == "initialized"  # a settle has no target of its own
    idle = asked(core, core.lifecycle.after_current)  # nothing under way: at once
    assert idle.value == {"id": "a", "status": "initialized"}


def _interrupted(answer: Answer, what: str, by: str) -> None:
    error = answer.error
    assert isinstance(error, PluginStateError)
    assert error.message == f"plugin 'a': {what} interrupted by {by}"
    assert error.context == {"plugin": "a", "interrupted_by": by}


def test_a_stop_interrupts_a_load_waiting_for_its_worker(core: Core, a: PluginInfo) -> None:
    loaded = core.load(a)
    stopped = asked(core, core.lifecycle.stop)
    _interrupted(loaded, "load", "stop")
    assert stopped.value == {"id": "a", "status": "stopped"}  # no worker: nothing to stop
    late = core.started("a")  # the fork server answers after all: that worker is nobody's
    assert core.workers.signals == [(late.pid, KILL)] and core.slots["a"].worker is None
    core.clock.advance(60)  # the load's connect deadline passes: it gives up the spawn
    assert core.workers.spawns[0].abandoned and core.slots["a"].status == "stopped"


def test_a_stop_interrupts_a_load_in_its_phases_and_kills_its_worker(
        core: Core, a: PluginInfo) -> None:
    loaded = core.load(a)
    worker = core.started("a")
    core.hello("a")
    stopped = asked(core, core.lifecycle.stop)
    _interrupted(loaded, "load", "stop")
    assert core.workers.signals == [(worker.pid, KILL)]
    core.exit("a")
    assert stopped.value == {"id": "a", "status": "stopped"}
    assert "plugin_crashed" not in core.event_names()


@pytest.mark.parametrize("by", ["stop", "unload", "restart"])
def test_a_stop_interrupts_an_activate_and_those_queued_ahead_of_it(
        core: Core, a: PluginInfo, by: str) -> None:
    slot = core.ready(a)
    activated = asked(core, core.lifecycle.activate)
    deactivated = asked(core, core.lifecycle.deactivate)
    settled = asked(core, core.lifecycle.after_current)
    reloaded = asked(core, core.lifecycle.start)
    stopped = asked(core, getattr(core.lifecycle, by))
    _interrupted(activated, "activate", by)
    _interrupted(deactivated, "deactivate", by)
    _interrupted(reloaded, "start", by)
    assert settled.value == {"id": "a", "status": "initialized"}  # not interruptible: ran
    assert slot.busy == by and stopped.ok is None
    assert slot.worker is not None and core.workers.signals == []  # same worker: it stops
    activate, shutdown = (r for r in core.outbox.take("a") if isinstance(r, Phase))
    assert (activate.phase, shutdown.phase) == ("activate", "shutdown")
    core.reply("a", activate, {"status": "active"})  # too late: nobody takes it
    assert slot.status == "initialized" and slot.target == "initialized"


def test_the_worker_dying_in_a_hello_wait_fails_the_load_without_restart(
        core: Core, a: PluginInfo) -> None:
    loaded = core.load(a)
    core.started("a")
    core.exit("a", 3)
    assert isinstance(loaded.error, WorkerDiedError)
    assert loaded.error.message == "plugin 'a' worker exited with code 3"
    assert loaded.error.context == {"plugin": "a", "reason": "exited with code 3"}
    assert core.event_names() == ["plugin_crashed"]
    core.clock.advance(60)
    assert core.slots["a"].status == "error" and len(core.workers.spawns) == 1


_DURING: dict[str, tuple[bool, str]] = {  # operation: (active before, the phase it waits on)
    "load": (False, "initialize"),
    "activate": (False, "activate"),
    "deactivate": (True, "deactivate"),
    "start": (False, "activate"),
    "restart": (True, "activate"),
}

@pytest.mark.parametrize("operation", ["load", "activate", "deactivate", "start", "restart"])
def test_the_worker_dying_in_an_operations_phase_fails_it_without_restart(
        core: Core, a: PluginInfo, operation: str) -> None:
    active, phase = _DURING[operation]
    if operation == "load":
        answer = core.load(a)
        core.started("a")
        core.hello("a")
    else:
        core.ready(a, active=active)
        if operation == "start":
            _stopped(core)
        answer = asked(core, getattr(core.lifecycle, operation))
        if operation == "restart":
            assert core.converse("a") == ["deactivate", "shutdown", "Stop"]
            core.exit("a", 0)
        if operation in ("start", "restart"):
            core.started("a")
            core.hello("a")
    assert pending_phases(core, "a")[-1] == phase
    core.exit("a")

    error = answer.error
    assert isinstance(error, WorkerDiedError)
    assert error.message == "plugin 'a' worker killed by SIGKILL"
    slot = core.slots["a"]
    assert slot.last_error == error.message and core.event_names()[-1] == "plugin_crashed"
    spawns = len(core.workers.spawns)
    core.clock.advance(60)
    assert slot.status == "error" and len(core.workers.spawns) == spawns


def test_a_hello_with_no_spawn_waiting_does_nothing(core: Core, a: PluginInfo) -> None:
    slot = core.ready(a)
    events = list(core.events)
    core.lifecycle.worker_connected(slot)  # nothing under way
    activated = asked(core, core.lifecycle.activate)
    core.lifecycle.worker_connected(slot)  # an activate waits for its phase, not a Hello
    assert core.events == events and activated.ok is None and slot.busy == "activate"
    assert core.answer("a", "active") == ["activate"] and activated.ok


def test_a_spawn_refused_by_the_operating_system_fails_the_load(
        core: Core, a: PluginInfo) -> None:
    loaded = core.load(a)
    core.workers.spawns[0].failed(OSError(11, "Resource temporarily unavailable"))
    assert type(loaded.error) is RuntimeFailure
    assert loaded.error.message == ("cannot load plugin 'a': [Errno 11] Resource "
                                    "temporarily unavailable")
    assert core.slots["a"].status == "error" and core.slots["a"].busy is None
