"""Restart policy with real workers: a crashed plugin comes back; a flapping one is failed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command, Message

from conftest import (
    GOOD,
    PLUGINS,
    copy_plugin,
    load_active,
    plugin_pids,
    running_container,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import PluginNotActiveError, PluginStateError, WorkerDiedError

pytestmark = pytest.mark.timeout(40)
CRASHY = PLUGINS / "crash" / "crashy"
FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "period": 60}


def state(container: PluginContainer, plugin_id: str) -> dict[str, Any]:
    (found,) = [p for p in container.status()["plugins"] if p["id"] == plugin_id]
    return dict(found)


def command(container: PluginContainer, plugin_id: str, action: str) -> Any:
    return container.send_message(plugin_id, Command(command_name=f"{plugin_id}:{action}"))


def test_permanent_plugin_comes_back_after_a_crash(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "phoenix")
    with running_container(restart=FAST) as container:
        container.discover_plugins([tmp_path, GOOD])
        load_active(container, tmp_path, "phoenix")
        events: list[tuple[str, Any]] = []
        restarted = threading.Event()

        def on_system(event: Message) -> None:
            events.append((event.event_name, event.event_data.get("plugin")))
            if event.event_name == "system:plugin_restarted":
                restarted.set()

        container.subscribe("phoenix", "event:system:*", on_system)
        old_pid = plugin_pids(container)["phoenix"]
        with pytest.raises(WorkerDiedError, match="exited with code 3"):
            command(container, "phoenix", "exit")
        assert restarted.wait(10)
        after = state(container, "phoenix")
        assert after["state"] == "active" and after["restarts"] == 1
        assert after["last_exit"] == "exited with code 3"
        assert command(container, "phoenix", "ping")["pong"] not in (None, old_pid)
        names = [name for name, plugin in events if plugin == "phoenix"]
        assert names[:5] == ["system:plugin_crashed", "system:plugin_restarting",
                             "system:plugin_started", "system:plugin_active",
                             "system:plugin_restarted"]


def test_intensity_exhausted_marks_the_plugin_failed_while_others_serve(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "flappy")
    with running_container(restart={**FAST, "max_restarts": 2}) as container:
        container.discover_plugins([tmp_path, GOOD])
        load_active(container, tmp_path, "flappy")
        load_active(container, GOOD, "design")
        for _crash in range(3):
            wait_until(lambda: state(container, "flappy")["state"] == "active", timeout=10)
            with pytest.raises(WorkerDiedError):
                command(container, "flappy", "segv")
        wait_until(lambda: state(container, "flappy")["state"] == "failed", timeout=10)
        failed = state(container, "flappy")
        assert failed["restarts"] == 2
        assert "gave up restarting" in failed["last_error"]
        assert "max_restarts 2" in failed["last_error"]
        with pytest.raises(PluginNotActiveError, match="failed"):
            command(container, "flappy", "ping")
        assert state(container, "design")["state"] == "active"
        reply = container.send_message("design", Command(command_name="design:generate",
                                                         arguments=["still", "here"]))
        assert reply


def test_failed_starts_count_and_back_off_on_the_loop(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "doomed")
    marker = tmp_path / "fail-now"
    with running_container(restart={**FAST, "max_restarts": 3}) as container:
        container.discover_plugins([tmp_path])
        info = container.discovered_plugins["doomed"]
        container.load_plugin(info, config={"fail_start_marker": str(marker)})
        container.activate_plugin("doomed")
        marker.touch()  # from now on every start dies in activate()
        with pytest.raises(WorkerDiedError):
            command(container, "doomed", "exit")
        # The supervisor keeps answering while the plugin flaps, then gives up.
        wait_until(lambda: state(container, "doomed")["state"] == "failed", timeout=15)
        failed = state(container, "doomed")
        assert failed["restarts"] == 0  # no start succeeded
        assert "gave up restarting" in failed["last_error"]


@pytest.mark.parametrize(("restart_type", "action", "restarted"), [
    ("transient", "exit", True),  # abnormal end: restarted
    ("transient", "quit", False),  # clean exit: not restarted
    ("permanent", "quit", True),  # permanent: restarted even after a clean exit
])
def test_restart_types(tmp_path: Path, restart_type: str, action: str, restarted: bool) -> None:
    copy_plugin(CRASHY, tmp_path, "typed")
    with running_container(restart={**FAST, "type": restart_type}) as container:
        container.discover_plugins([tmp_path])
        load_active(container, tmp_path, "typed")
        with pytest.raises(WorkerDiedError):
            command(container, "typed", action)
        if restarted:
            wait_until(lambda: state(container, "typed")["restarts"] == 1, timeout=10)
            assert state(container, "typed")["state"] == "active"
        else:
            wait_until(lambda: state(container, "typed")["state"] != "active", timeout=10)
            final = state(container, "typed")
            assert final["state"] == "unloaded" and final["restarts"] == 0


def test_stop_start_restart_at_run_time(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "managed")
    with running_container(restart=FAST) as container:
        load_active(container, tmp_path, "managed")
        first = plugin_pids(container)["managed"]
        container.restart_plugin("managed")
        second = plugin_pids(container)["managed"]
        assert second != first and state(container, "managed")["state"] == "active"
        assert command(container, "managed", "ping")["pong"] == second
        container.stop_plugin("managed")
        stopped = state(container, "managed")
        assert stopped["state"] == "stopped" and stopped["pid"] is None
        assert stopped["restarts"] == 0  # an orderly stop is not a crash
        with pytest.raises(PluginNotActiveError, match="stopped"):
            command(container, "managed", "ping")
        container.start_plugin("managed")
        running = plugin_pids(container)["managed"]
        assert command(container, "managed", "ping")["pong"] == running
        with pytest.raises(PluginStateError, match="already running"):
            container.start_plugin("managed")  # refused: the running worker is left alone
        with pytest.raises(PluginStateError, match="already active"):
            container.activate_plugin("managed")  # refused: its handlers stay
        assert state(container, "managed")["state"] == "active"
        assert command(container, "managed", "ping")["pong"] == running


@pytest.mark.parametrize("action", ["hang", "spin"])
def test_hung_worker_is_killed_as_unresponsive_and_restarted(tmp_path: Path,
                                                             action: str) -> None:
    copy_plugin(CRASHY, tmp_path, "stuck")
    with running_container(restart=FAST, heartbeat_interval=0.1, heartbeat_misses=3,
                           request_timeout=20.0) as container:
        load_active(container, tmp_path, "stuck")
        with pytest.raises(WorkerDiedError, match="unresponsive") as caught:
            command(container, "stuck", action)  # blocks the plugin's thread for good
        assert "no heartbeat answered for 0.3s" in str(caught.value)
        wait_until(lambda: state(container, "stuck")["restarts"] == 1, timeout=10)
        after = state(container, "stuck")
        assert after["state"] == "active" and "unresponsive" in after["last_exit"]
        assert command(container, "stuck", "ping")["pong"] == plugin_pids(container)["stuck"]


def test_a_busy_but_healthy_worker_is_left_alone(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "steady")
    with running_container(heartbeat_interval=0.05, heartbeat_misses=3) as container:
        load_active(container, tmp_path, "steady")
        pid = plugin_pids(container)["steady"]
        for _ in range(40):  # 40 calls over well past the 0.15 s of tolerated silence
            assert command(container, "steady", "nap")["pong"] == pid
        assert state(container, "steady")["restarts"] == 0


def test_calls_during_a_restart_backoff_wait_for_the_replacement_unless_told_not_to(
        tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "backing")
    with running_container(restart={"backoff_initial": 1.0}) as container:
        load_active(container, tmp_path, "backing")
        with pytest.raises(WorkerDiedError):
            command(container, "backing", "exit")  # first restart: immediate
        wait_until(lambda: state(container, "backing")["restarts"] == 1, timeout=10)
        old_pid = plugin_pids(container)["backing"]
        with pytest.raises(WorkerDiedError):
            command(container, "backing", "exit")  # second: after 1 s
        wait_until(lambda: state(container, "backing")["state"] == "restarting")
        started = time.monotonic()
        with pytest.raises(PluginNotActiveError, match="'backing' is restarting"):
            container.send_message("backing", Command(command_name="backing:ping"),
                                   wait_for_ready=False)
        assert time.monotonic() - started < 0.5  # failed fast, as asked

        answer = command(container, "backing", "ping")  # held until the replacement is up
        assert answer["pong"] not in (None, old_pid)
        assert state(container, "backing")["restarts"] == 2


@pytest.mark.parametrize("wait_for_ready", [True, False])
def test_a_plugin_calling_itself_while_it_activates_is_not_held_behind_its_own_start(
        wait_for_ready: bool) -> None:
    """Its call is refused at once (as before calls waited for ready), never held until
    the activate it is part of times out."""
    with running_container(wait_for_ready=wait_for_ready, phase_timeout=3.0,
                           request_timeout=3.0) as container:
        container.discover_plugins([PLUGINS / "selfcall"])
        container.load_plugin(container.discovered_plugins["selfcall"])
        began = time.monotonic()
        container.activate_plugin("selfcall")
        assert time.monotonic() - began < 1.0
        seen = container.send_message("selfcall", Command(command_name="selfcall:seen"))
        assert seen["outcome"].startswith("PluginNotActiveError"), seen
