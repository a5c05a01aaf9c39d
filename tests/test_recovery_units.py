"""The restart policy carried out on fake ports (supervisor_fakes): a worker that ends on its
own while no operation is under way is restarted after its backoff, or not, or given up on,
as its restart settings say; a stop cancels a restart not yet begun; rest_for_one restarts
the dependents after the plugin. The clock is moved by hand: no process, no socket."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from spec_kit_runtime.plugins.config import config_from_data
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.policy.exits import ExitKind
from spec_kit_runtime.policy.restart import RestartType
from spec_kit_runtime.supervisor.slots import PluginSlot
from supervisor_fakes import Answer, Core, manifest

KILLED = "plugin 'a' worker killed by SIGKILL"


def configured(runtime: dict[str, Any] | None = None,
               plugins: dict[str, Any] | None = None) -> Core:
    return Core(config_from_data({"runtime": runtime or {}, "plugins": plugins or {}},
                                 Path("c.yaml")))


@pytest.fixture
def a(tmp_path: Path) -> PluginInfo:
    return manifest(tmp_path, "a")


def restarted(core: Core, plugin_id: str = "a", after: float = 0.0) -> None:
    """The backoff passes and the new worker comes up to its target state."""
    slot = core.slots[plugin_id]
    spawns = len(core.workers.spawns)
    core.clock.advance(after)
    assert len(core.workers.spawns) == spawns + 1
    core.up(plugin_id, str(slot.target or "initialized"))  # as a worker says it: text


def events_of(core: Core, name: str) -> list[dict[str, object]]:
    return [data for event, data in core.events if event == name]


def test_a_crash_while_idle_restarts_once_the_backoff_has_passed(a: PluginInfo) -> None:
    core = configured({"restart": {"backoff_initial": 0.5, "backoff_factor": 2,
                                   "backoff_max": 1.5, "stable_after": 1000}})
    slot = core.ready(a, active=True)
    for count, delay in enumerate([0.0, 0.5, 1.0, 1.5, 1.5], start=1):
        core.clock.advance(10)
        events = len(core.events)
        core.exit("a")
        assert slot.status == "restarting" and slot.restart_timer is not None
        assert core.events[events:] == [
            ("plugin_crashed", {"plugin": "a", "reason": "killed by SIGKILL"}),
            ("plugin_restarting", {"plugin": "a", "delay": delay, "reason": KILLED}),
        ]
        spawns = len(core.workers.spawns)
        core.clock.advance(delay - 0.001 if delay else 0)
        assert len(core.workers.spawns) == spawns + (delay == 0)  # not inline: on the timer
        core.clock.advance(0.001)
        assert len(core.workers.spawns) == spawns + 1 and slot.restart_timer is None
        core.started("a")
        core.hello("a")
        assert core.answer("a", "active") == ["load", "initialize", "activate"]
        assert slot.status == "active" and slot.restarts == count
        assert core.event_names()[-3:] == ["plugin_started", "plugin_active",
                                           "plugin_restarted"]
        assert core.events[-1] == ("plugin_restarted", {"plugin": "a", "restarts": count})


@pytest.mark.parametrize(("active", "phases"), [
    (True, ["load", "initialize", "activate"]),
    (False, ["load", "initialize"]),
])
def test_a_restart_brings_the_plugin_back_to_its_target_state(
        a: PluginInfo, active: bool, phases: list[str]) -> None:
    core = Core()
    slot = core.ready(a, active=active)
    core.exit("a")
    core.clock.advance(0)
    core.started("a")
    core.hello("a")
    target = "active" if active else "initialized"
    assert core.answer("a", target) == phases
    assert slot.status == target and slot.target == target and slot.restarts == 1
    assert slot.facts_generation == 2  # the new worker's facts


def test_a_worker_stable_for_stable_after_restarts_without_backoff(a: PluginInfo) -> None:
    core = configured({"restart": {"backoff_initial": 0.5, "stable_after": 30}})
    slot = core.ready(a, active=True)
    core.exit("a")
    restarted(core)
    core.clock.advance(1)
    core.exit("a")  # up 1 s: the backoff grows
    assert events_of(core, "plugin_restarting")[-1]["delay"] == 0.5
    restarted(core, after=0.5)
    core.clock.advance(30)
    core.exit("a")  # up 30 s: stable, the backoff starts over
    assert events_of(core, "plugin_restarting")[-1]["delay"] == 0.0
    assert slot.status == "restarting"


def _ends(core: Core, how: str) -> None:
    worker = core.slots["a"].worker
    assert worker is not None
    if how == "exit 0":
        core.exit("a", 0)
    elif how == "exit 3":
        core.exit("a", 3)
    elif how == "SIGSEGV":
        core.exit("a", -signal.SIGSEGV)
    elif how == "unresponsive":
        worker.kill_for("unresponsive: 6 heartbeats missed", ExitKind.UNRESPONSIVE)
        core.exit("a")
    else:
        assert how == "limit"
        worker.kill_for("memory limit exceeded", ExitKind.LIMIT)
        core.exit("a")


@pytest.mark.parametrize(("restart", "how", "status"), [
    ("permanent", "exit 0", "restarting"),
    ("permanent", "exit 3", "restarting"),
    ("permanent", "SIGSEGV", "restarting"),
    ("transient", "exit 0", "unloaded"),  # ended normally: done, not failed
    ("transient", "exit 3", "restarting"),
    ("transient", "SIGSEGV", "restarting"),
    ("transient", "unresponsive", "restarting"),
    ("transient", "limit", "restarting"),
    ("temporary", "exit 0", "unloaded"),
    ("temporary", "exit 3", "error"),
    ("temporary", "limit", "error"),
])
def test_how_a_worker_ended_and_its_restart_type_decide_what_follows(
        a: PluginInfo, restart: str, how: str, status: str) -> None:
    core = configured(plugins={"a": {"restart": {"type": restart}}})
    slot = core.ready(a, active=True)
    assert slot.tracker.policy.restart is RestartType(restart)
    _ends(core, how)
    assert slot.status == status
    expected = ["plugin_crashed", *(["plugin_restarting"] if status == "restarting" else [])]
    if how == "limit":
        expected.insert(0, "plugin_limit_exceeded")
    assert core.event_names()[-len(expected):] == expected
    assert core.event_names().count("plugin_crashed") == 1
    assert (slot.restart_timer is not None) == (status == "restarting")
    spawns = len(core.workers.spawns)
    core.clock.advance(1)  # the first restart is immediate (on the next turn)
    assert len(core.workers.spawns) == spawns + (status == "restarting")
    if status != "restarting":
        assert slot.last_error == f"plugin 'a' worker {slot.last_exit}" and slot.restarts == 0


@pytest.mark.parametrize(("manifest_restart", "config_restart", "restarted_after_exit_0"), [
    ({"type": "transient"}, None, False),
    ({"type": "temporary"}, None, False),
    ({"type": "transient"}, {"type": "permanent"}, True),  # the operator has the last word
    (None, {"type": "transient"}, False),
    (None, None, True),  # permanent by default
])
def test_the_restart_type_comes_from_the_manifest_then_the_config(
        tmp_path: Path, manifest_restart: dict[str, str] | None,
        config_restart: dict[str, str] | None, restarted_after_exit_0: bool) -> None:
    core = configured(plugins={"a": {"restart": config_restart}} if config_restart else None)
    fields = {"restart": manifest_restart} if manifest_restart else {}
    slot = core.ready(manifest(tmp_path, "a", **fields), active=True)
    core.exit("a", 0)
    assert (slot.status == "restarting") is restarted_after_exit_0


@pytest.mark.parametrize(("max_restarts", "period", "crash_every", "crashes", "given_up_at"), [
    (2, 60, 1, 3, 3),  # the third within the period is one too many
    (0, 60, 1, 1, 1),  # never restarted
    (1, 10, 11, 4, None),  # each crash out of the period of the last: never too many
    (1, 10, 3, 2, 2),
])
def test_more_restarts_than_the_intensity_allows_fail_the_plugin(
        a: PluginInfo, max_restarts: int, period: float, crash_every: float, crashes: int,
        given_up_at: int | None) -> None:
    core = configured({"restart": {"max_restarts": max_restarts, "period": period,
                                   "backoff_initial": 0, "stable_after": 1000}})
    slot = core.ready(a, active=True)
    for crash in range(1, crashes + 1):
        core.clock.advance(crash_every)
        core.exit("a")
        if crash == given_up_at:
            break
        assert slot.status == "restarting"
        restarted(core)
    if given_up_at is None:
        assert slot.status == "active" and slot.restarts == crashes
        assert "plugin_failed" not in core.event_names()
        return
    why = (f"gave up restarting: it would be restart {max_restarts + 1} within {period:g}s "
           f"(max_restarts {max_restarts}); last: {KILLED}")
    assert slot.status == "failed" and slot.last_error == why
    assert core.events[-1] == ("plugin_failed", {"plugin": "a", "reason": why})
    assert slot.restart_timer is None and slot.restarts == given_up_at - 1
    spawns = len(core.workers.spawns)
    core.clock.advance(600)
    assert len(core.workers.spawns) == spawns


def _fail_the_restart(core: Core, how: str) -> None:
    if how == "phase failed":
        core.started("a")
        core.hello("a")
        assert core.answer("a", ok=False) == ["load", "initialize", "activate"]
    else:
        assert how == "no hello"
        core.clock.advance(core.config.start_timeout)


@pytest.mark.parametrize(("how", "why"), [
    ("phase failed", "activate failed"),
    ("no hello", "plugin 'a': worker did not connect within 10s"),
])
def test_a_failed_restart_counts_as_an_ending(a: PluginInfo, how: str, why: str) -> None:
    core = configured({"restart": {"backoff_initial": 0.25, "stable_after": 1000}})
    slot = core.ready(a, active=True)
    core.exit("a")
    core.clock.advance(0)
    _fail_the_restart(core, how)
    assert slot.status == "restarting" and slot.restarts == 0
    assert events_of(core, "plugin_restarting")[-1] == {"plugin": "a", "delay": 0.25,
                                                        "reason": why}
    killed = slot.worker
    if killed is not None:  # the new worker of the failed start is killed, and waited for
        assert core.workers.signals == [(killed.pid, signal.SIGKILL)]
        core.clock.advance(0.25)
        assert len(core.workers.spawns) == 2 and slot.busy == "recover"
        events = len(core.events)
        core.exit("a")
        assert core.events[events:] == []  # its end was expected: no crash
    else:
        core.clock.advance(0.25)
    assert len(core.workers.spawns) == 3
    core.up("a", "active")
    assert slot.status == "active" and slot.restarts == 1


def test_a_restart_whose_worker_dies_in_its_phases_is_one_ending_not_two(
        a: PluginInfo) -> None:
    """The recover fails with that death, which counts once (a failed start): not a second
    time as a crash of the idle plugin, which would halve max_restarts."""
    core = configured({"restart": {"backoff_initial": 0.25, "stable_after": 1000}})
    slot = core.ready(a, active=True)
    core.exit("a")
    core.clock.advance(0)
    core.started("a")
    core.hello("a")
    core.exit("a")  # during its load, initialize and activate
    assert len(events_of(core, "plugin_restarting")) == 2  # the first crash, then this
    assert slot.status == "restarting" and slot.restart_timer is not None
    core.clock.advance(0.25)
    assert len(core.workers.spawns) == 3


def test_a_failed_restart_past_the_intensity_fails_the_plugin(a: PluginInfo) -> None:
    core = configured({"restart": {"max_restarts": 1}})
    slot = core.ready(a, active=True)
    core.exit("a")
    core.clock.advance(0)
    _fail_the_restart(core, "phase failed")
    assert slot.status == "failed"
    assert slot.last_error == ("gave up restarting: it would be restart 2 within 60s "
                               "(max_restarts 1); last: activate failed")
    assert core.event_names()[-1] == "plugin_failed"


@pytest.mark.parametrize("how", ["stop", "unload"])
def test_a_stop_during_the_backoff_cancels_the_restart(a: PluginInfo, how: str) -> None:
    core = configured({"restart": {"backoff_initial": 5}})
    slot = core.ready(a, active=True)
    core.exit("a")
    restarted(core)
    core.exit("a")  # the second restart waits 5 s
    timer = slot.restart_timer
    assert timer is not None and not timer.cancelled
    stopped = Answer()
    getattr(core.lifecycle, how)("a", stopped)
    assert stopped.ok and timer.cancelled and slot.restart_timer is None
    assert slot.status == ("stopped" if how == "stop" else "unloaded")
    assert core.outbox.to_workers == []  # no worker: nothing sent, nothing signalled
    core.clock.advance(60)
    assert len(core.workers.spawns) == 2 and core.workers.signals == []


def test_a_start_during_the_backoff_takes_over_and_the_timer_then_does_nothing(
        a: PluginInfo) -> None:
    core = configured({"restart": {"backoff_initial": 5}})
    slot = core.ready(a, active=True)
    core.exit("a")
    restarted(core)
    core.exit("a")
    started = Answer()
    core.lifecycle.start("a", started)
    core.up("a", "active")
    assert started.ok and slot.status == "active"
    core.clock.advance(60)  # the restart's timer fires: handled meanwhile
    assert len(core.workers.spawns) == 3 and slot.restarts == 1


@pytest.mark.parametrize("how", ["stop", "restart"])
def test_an_interrupted_restart_is_no_failed_start(a: PluginInfo, how: str) -> None:
    core = configured({"restart": {"max_restarts": 1}})  # a failed start would give up
    slot = core.ready(a, active=True)
    core.exit("a")
    core.clock.advance(0)
    assert slot.busy == "recover"
    answer = Answer()
    getattr(core.lifecycle, how)("a", answer)
    if how == "restart":
        core.up("a", "active")
    assert answer.ok and slot.status == ("stopped" if how == "stop" else "active")
    assert "plugin_failed" not in core.event_names()
    assert len(events_of(core, "plugin_restarting")) == 1 and slot.restarts == 0
    assert slot.restart_timer is None


def _family(core: Core, folder: Path) -> dict[str, PluginSlot]:
    """a; b needs a; c needs b; d alone; e needs a but is only initialized."""
    return {
        "a": core.ready(manifest(folder, "a"), active=True),
        "b": core.ready(manifest(folder, "b", ("a",)), active=True),
        "c": core.ready(manifest(folder, "c", ("b",)), active=True),
        "d": core.ready(manifest(folder, "d"), active=True),
        "e": core.ready(manifest(folder, "e", ("a",))),
    }


def test_rest_for_one_restarts_the_active_dependents_after_the_plugin(
        tmp_path: Path) -> None:
    core = configured({"strategy": "rest_for_one"})
    slots = _family(core, tmp_path)
    core.exit("a")
    assert core.outbox.to_workers == []  # not before a is back
    restarted(core)
    assert [owner for owner, _ in core.outbox.to_workers] == ["b", "c"]
    assert slots["b"].busy == slots["c"].busy == "restart"
    for dependent in ("b", "c"):
        assert core.converse(dependent) == ["deactivate", "shutdown", "Stop"]
        core.exit(dependent, 0)
        core.up(dependent, "active")
        assert slots[dependent].status == "active" and slots[dependent].restarts == 0
    assert [s.slot.plugin_id for s in core.workers.spawns][5:] == ["a", "b", "c"]
    assert slots["e"].status == "initialized" and slots["d"].busy is None


def test_one_for_one_restarts_only_the_plugin(tmp_path: Path) -> None:
    core = configured({"strategy": "one_for_one"})
    slots = _family(core, tmp_path)
    core.exit("a")
    restarted(core)
    assert core.outbox.to_workers == [] and all(s.busy is None for s in slots.values())
    assert [s.slot.plugin_id for s in core.workers.spawns][5:] == ["a"]
    assert all(s.status == "active" for p, s in slots.items() if p != "e")
