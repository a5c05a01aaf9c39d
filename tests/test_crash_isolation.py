"""A worker that dies or hangs mid-request: its caller hears promptly, the rest keeps going."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from spec_kit_contracts import Command, Request

from conftest import (
    GOOD,
    PLUGINS,
    copy_plugin,
    pid_alive,
    plugin_entry,
    plugin_pids,
    running_container,
    track,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import DeadlineExceeded, PluginNotActiveError, WorkerDiedError

pytestmark = pytest.mark.timeout(30)
CRASHY = PLUGINS / "crash" / "crashy"


@pytest.fixture(scope="module")
def crashing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginContainer]:
    # Short phase/stop timeouts: the hung worker must not make shutdown slow. Temporary
    # plugins are not restarted, so what a death leaves behind can be inspected
    # (restarts are tested in test_restarts.py).
    root = tmp_path_factory.mktemp("crash")
    for plugin_id in ("crash_exit", "crash_segv", "crash_hang"):
        copy_plugin(CRASHY, root, plugin_id)
    with running_container(phase_timeout=2.0, stop_timeout=0.5,
                           restart={"type": "temporary"}) as container:
        container.discover_plugins([root, GOOD])
        for plugin_id in ("design", "audit", "crash_exit", "crash_segv", "crash_hang"):
            container.load_plugin(container.discovered_plugins[plugin_id], config={})
            container.activate_plugin(plugin_id)
        track(container)
        yield container



def _crash(container: PluginContainer, plugin_id: str, action: str) -> tuple[str, float]:
    pid = plugin_pids(container)[plugin_id]
    started = time.monotonic()
    with pytest.raises(WorkerDiedError) as caught:
        container.send_message(plugin_id, Command(command_name=f"{plugin_id}:{action}"))
    elapsed = time.monotonic() - started
    assert caught.value.plugin == plugin_id
    assert not pid_alive(pid)
    return str(caught.value), elapsed


@pytest.mark.parametrize(("plugin_id", "action", "reason"), [
    ("crash_exit", "exit", "exited with code 3"),
    ("crash_segv", "segv", "killed by SIGSEGV"),
])
def test_worker_death_mid_request_is_reported_within_a_second(
        crashing: PluginContainer, plugin_id: str, action: str, reason: str) -> None:
    alive = plugin_pids(crashing)
    assert crashing.send_message(
        plugin_id, Command(command_name=f"{plugin_id}:ping"))["pong"] == alive[plugin_id]

    message, elapsed = _crash(crashing, plugin_id, action)
    assert elapsed < 1.0, f"the caller waited {elapsed:.2f}s"
    assert reason in message and plugin_id in message

    # The supervisor and the other plugins keep serving, in the same processes.
    assert crashing.send_message(
        "design", Command(command_name="design:generate", arguments=["still", "here"]),
    )["doc"] == "# still here"
    after = plugin_pids(crashing)
    assert after["design"] == alive["design"] and after["audit"] == alive["audit"]

    state = plugin_entry(crashing, plugin_id)
    assert state["state"] == "error"
    assert state["last_exit"] == reason
    assert state["pid"] is None
    assert reason in state["last_error"]

    # Subscribers of event:system:* hear of it, stamped by the supervisor.
    seen = crashing.send_message("audit", Request(method="audit:seen"))
    crashes = [e for e in seen if e["event"] == "system:plugin_crashed"
               and e["data"]["plugin"] == plugin_id]
    assert crashes == [{"event": "system:plugin_crashed", "source": "system",
                        "data": {"plugin": plugin_id, "reason": reason}}]


def test_crashed_plugin_answers_with_an_error_not_a_hang(crashing: PluginContainer) -> None:
    if plugin_entry(crashing, "crash_exit")["state"] != "error":
        _crash(crashing, "crash_exit", "exit")
    started = time.monotonic()
    with pytest.raises(PluginNotActiveError) as caught:
        crashing.send_message("crash_exit", Command(command_name="crash_exit:ping"))
    assert time.monotonic() - started < 1.0
    assert "crash_exit" in str(caught.value)
    assert "exited with code 3" in str(caught.value)


def test_handler_that_never_returns_hits_the_deadline(crashing: PluginContainer) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        crashing.send_message("crash_hang", Request(method="crash_hang:hang", timeout=0.5))
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5, f"deadline error after {elapsed:.2f}s"
    error = caught.value
    assert error.plugin == "crash_hang"
    assert "request:crash_hang:hang" in str(error)
    assert isinstance(error, TimeoutError)
    # The supervisor still serves everybody else while that worker spins.
    assert crashing.send_message(
        "design", Command(command_name="design:generate", arguments=["ok"]))["doc"] == "# ok"
    assert crashing.status()["supervisor"]["pid"]


def test_worker_death_during_activate_fails_the_activation(
        crashing: PluginContainer, tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "crash_activate")
    crashing.discover_plugins([tmp_path])
    crashing.load_plugin(crashing.discovered_plugins["crash_activate"],
                         config={"exit_in": "activate"})
    started = time.monotonic()
    with pytest.raises(WorkerDiedError) as caught:
        crashing.activate_plugin("crash_activate")
    assert time.monotonic() - started < 1.0
    assert caught.value.plugin == "crash_activate"
    assert "exited with code 4" in str(caught.value)
    state = plugin_entry(crashing, "crash_activate")
    assert (state["state"], state["last_exit"], state["pid"]) == (
        "error", "exited with code 4", None)
    assert crashing.send_message(
        "design", Command(command_name="design:generate", arguments=["on"]))["doc"] == "# on"
