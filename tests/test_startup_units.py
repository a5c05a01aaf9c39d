"""The ordered start of the configured plugins on fake ports (supervisor_fakes): each plugin
is loaded and activated once its dependencies are active, independent ones together; a
plugin whose dependency did not start is refused with why; ``done`` is called once. No
process, no socket: the test plays the fork server and the workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor_fakes import Answer, Core, manifest, record_names


class Done:
    """Counts the calls of StartUp's ``done``."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def begin(core: Core, folder: Path, plugins: dict[str, tuple[str, ...]]) -> Done:
    """Start ``plugins`` (id: its dependencies), each with a config naming it."""
    done = Done()
    core.startup.begin([(manifest(folder, pid, needs), {"me": pid})
                        for pid, needs in plugins.items()], done)
    return done


def spawned(core: Core) -> list[str]:
    return [s.slot.plugin_id for s in core.workers.spawns]


def active(core: Core, plugin_id: str) -> None:
    """The plugin's spawn succeeds, its load is answered, then its activate."""
    core.up(plugin_id)
    assert core.answer(plugin_id, "active") == ["activate"]
    assert core.slots[plugin_id].status == "active"


def test_plugins_start_in_dependency_order_independent_ones_together(
        core: Core, tmp_path: Path) -> None:
    done = begin(core, tmp_path, {"d": ("b", "c"), "b": ("a",), "c": (), "a": ()})
    assert spawned(core) == ["a", "c"]  # asked together, neither waiting for the other
    assert core.startup.pending == {"a", "b", "c", "d"}
    active(core, "a")
    assert spawned(core) == ["a", "c", "b"]  # b's only dependency is active
    active(core, "b")
    assert spawned(core) == ["a", "c", "b"]  # d still waits for c
    active(core, "c")
    assert spawned(core) == ["a", "c", "b", "d"] and done.calls == 0
    active(core, "d")
    assert done.calls == 1 and core.startup.pending == set()
    assert core.startup.failed == {} and core.startup.refused == {}
    assert core.slots["d"].config == {"me": "d"}


@pytest.fixture
def core() -> Core:
    return Core()


def _fail(core: Core, plugin_id: str, how: str) -> None:
    if how == "initialize failed":
        core.started(plugin_id)
        core.hello(plugin_id)
        core.answer(plugin_id, ok=False)
    elif how == "activate failed":
        core.up(plugin_id)
        core.answer(plugin_id, ok=False)
    else:
        assert how == "plugin 'a': worker did not connect within 10s"
        core.clock.advance(core.config.start_timeout)


@pytest.mark.parametrize("how", ["initialize failed", "activate failed",
                                 "plugin 'a': worker did not connect within 10s"])
def test_a_dependency_that_fails_refuses_its_dependents(
        core: Core, tmp_path: Path, how: str) -> None:
    done = begin(core, tmp_path, {"a": (), "b": ("a",), "c": ("b",), "d": ()})
    assert spawned(core) == ["a", "d"]
    active(core, "d")
    assert core.startup.pending == {"a", "b", "c"} and done.calls == 0
    _fail(core, "a", how)
    assert core.startup.failed == {"a": how}
    assert core.startup.refused == {"b": "its dependency 'a' did not start",
                                    "c": "its dependency 'b' did not start"}
    assert "b" not in core.slots and "c" not in core.slots
    assert core.startup.pending == set() and done.calls == 1 and spawned(core) == ["a", "d"]


def test_cycles_and_missing_dependencies_are_refused_up_front(
        core: Core, tmp_path: Path) -> None:
    done = begin(core, tmp_path, {"x": ("y",), "y": ("x",), "z": ("gone",), "w": ("z",),
                                  "v": ()})
    assert core.startup.refused == {
        "x": "dependency cycle x -> y -> x",
        "y": "dependency cycle x -> y -> x",
        "z": "needs 'gone', which is not there",
        "w": "needs 'z', which was refused",
    }
    assert spawned(core) == ["v"] and core.startup.pending == {"v"}
    active(core, "v")
    assert done.calls == 1 and core.startup.failed == {}


@pytest.mark.parametrize("plugins", [{}, {"x": ("y",), "y": ("x",)}, {"x": ("gone",)}])
def test_done_comes_at_once_when_nothing_can_start(
        core: Core, tmp_path: Path, plugins: dict[str, tuple[str, ...]]) -> None:
    done = begin(core, tmp_path, plugins)
    assert done.calls == 1 and spawned(core) == [] and core.startup.pending == set()


def test_done_is_called_once_whatever_follows(core: Core, tmp_path: Path) -> None:
    done = begin(core, tmp_path, {"a": (), "b": ()})
    active(core, "a")
    _fail(core, "b", "activate failed")
    assert done.calls == 1
    core.exit("a")  # what follows the start is no business of it
    core.clock.advance(1)
    core.up("a", "active")
    assert done.calls == 1 and core.slots["a"].restarts == 1
    assert core.startup.failed == {"b": "activate failed"}


def _restart_during(core: Core, stage: str) -> Answer:
    """Ask for a restart of plugin a while its start is at ``stage``; drive the restart up
    to its new worker's phases."""
    if stage == "activate":
        core.up("a")
        assert record_names(core.outbox.take("a")) == ["activate"]  # left unanswered
    restarted = Answer()
    core.lifecycle.restart("a", restarted)
    if stage == "activate":  # the worker is stopped in order
        assert core.converse("a") == ["shutdown", "Stop"]
        core.exit("a", 0)
    return restarted


@pytest.mark.parametrize("stage", ["load", "activate"])
def test_a_restart_asked_during_the_start_takes_it_over(
        core: Core, tmp_path: Path, stage: str) -> None:
    done = begin(core, tmp_path, {"a": (), "b": ("a",)})
    restarted = _restart_during(core, stage)
    assert spawned(core) == ["a", "a"]  # b waits for the restart
    assert core.startup.pending == {"a", "b"} and core.startup.failed == {}
    core.up("a", "active")
    assert restarted.ok and spawned(core) == ["a", "a", "b"]
    active(core, "b")
    assert done.calls == 1 and core.startup.failed == {} and core.startup.refused == {}


def test_a_restart_that_fails_during_the_start_fails_it(core: Core, tmp_path: Path) -> None:
    done = begin(core, tmp_path, {"a": (), "b": ("a",)})
    restarted = _restart_during(core, "load")
    core.started("a")
    core.hello("a")
    core.answer("a", ok=False)
    assert restarted.ok is False
    assert core.startup.failed == {"a": "activate failed"}
    assert core.startup.refused == {"b": "its dependency 'a' did not start"}
    assert done.calls == 1 and spawned(core) == ["a", "a"]


def test_a_stop_asked_during_the_start_fails_it(core: Core, tmp_path: Path) -> None:
    done = begin(core, tmp_path, {"a": (), "b": ("a",)})
    stopped = Answer()
    core.lifecycle.stop("a", stopped)
    assert stopped.ok and core.slots["a"].status == "stopped"
    assert core.startup.failed == {"a": "plugin 'a': load interrupted by stop"}
    assert core.startup.refused == {"b": "its dependency 'a' did not start"}
    assert done.calls == 1 and spawned(core) == ["a"]
