"""Real workers killed while in a call: the call fails with the death, and the calls queued
behind it, which the worker had not begun, are answered by its replacement
(``loop.call_progress``, ``Exited.began``). Every way a worker is started writes its page:
a direct fork (a cold start's), the spare (a restart's), and a fresh interpreter."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import (
    PLUGINS,
    copy_plugin,
    data_folder,
    load_active,
    plugin_pids,
    running_container,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import WorkerDiedError

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"
FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "period": 60}


def in_flight(container: PluginContainer, plugin_id: str) -> int:
    (found,) = [p for p in container.status()["plugins"] if p["id"] == plugin_id]
    return int(found["messages"]["in_flight"])


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """``call`` on a thread of its own; its result (or the exception it raised) lands in
    the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # what the test checks
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def kill_in_a_call(container: PluginContainer, marker: Path) -> tuple[Any, list[Any], int]:
    """Put x's worker in a long call, queue two more behind it, SIGKILL the worker: what
    the long call got, what the queued ones got, and the killed worker's pid."""
    marker.unlink(missing_ok=True)
    sleeper, slept = in_background(lambda: container.send_message("x", Command(
        command_name="x:sleep", options={"seconds": 30, "marker": str(marker)})))
    wait_until(marker.exists, what="the worker to be in the long call")
    queued = [in_background(lambda: container.send_message(
        "x", Command(command_name="x:nap"))) for _ in range(2)]
    wait_until(lambda: in_flight(container, "x") == 3, what="both calls sent to the worker")
    pid = plugin_pids(container)["x"]
    os.kill(pid, signal.SIGKILL)
    for thread in (sleeper, *(thread for thread, _ in queued)):
        thread.join(20)
        assert not thread.is_alive()
    return slept[0], [outcome[0] for _, outcome in queued], pid


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_calls_queued_behind_the_one_a_worker_died_in_reach_its_replacement(
        tmp_path: Path, start_method: str) -> None:
    copy_plugin(CRASHY, tmp_path / "plugins", "x")
    data = tmp_path / "data"
    with running_container(restart=FAST, start_method=start_method,
                           data_dir=str(data)) as container:
        load_active(container, tmp_path / "plugins", "x")
        marker = data_folder(data, "x") / "began"  # where the plugin may write
        # fork: the first worker was forked directly (a cold start), the second is the
        # spare that the first restart took; spawn: a fresh interpreter each time
        for _ in range(2):
            died_in, queued, killed = kill_in_a_call(container, marker)
            assert isinstance(died_in, WorkerDiedError), died_in
            assert "killed by SIGKILL" in str(died_in)
            assert [type(answer) for answer in queued] == [dict, dict], queued
            assert {answer["pong"] for answer in queued} == {plugin_pids(container)["x"]}
            assert killed not in {answer["pong"] for answer in queued}
