"""Real workers killed while in a call: the call fails with the death, and the calls queued
behind it, which the worker had not begun, are answered by its replacement
(``loop.call_progress``, ``Exited.began``). Every way a worker is started writes its page:
a direct fork (a cold start's), the spare (a restart's), and a fresh interpreter."""

from __future__ import annotations

import os
import signal
import threading
import time
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
from spec_kit_runtime.policy.states import PluginState

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"
BALLAST = PLUGINS / "crash" / "ballast"
FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "period": 60}


def entry(container: PluginContainer, plugin_id: str) -> dict[str, Any]:
    (found,) = [p for p in container.status()["plugins"] if p["id"] == plugin_id]
    return dict(found)


def in_flight(container: PluginContainer, plugin_id: str) -> int:
    return int(entry(container, plugin_id)["messages"]["in_flight"])


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


def test_a_call_whose_receipt_kills_the_worker_is_put_back_twice_only() -> None:
    """The worker dies taking the call off its socket (no room left for the frame), before
    it writes the call's id: to the supervisor the call was not begun. Put back twice, it
    kills both replacements too; then it fails, and the plugin comes back for the others."""
    limits = {"ballast": {"limits": {"memory_mb": 96}}}
    with running_container(restart=FAST, cgroups=False, plugins=limits) as container:
        load_active(container, BALLAST, "ballast", config={"headroom_mb": 3})
        size = Command(command_name="ballast:size")
        assert container.send_message("ballast", size)["size"] == 0
        with pytest.raises(WorkerDiedError):  # a body within the put-back budget (4 MiB)
            container.send_message("ballast", Command(
                command_name="ballast:size", options={"pad": "a" * (7 << 19)}))  # 3.5 MiB

        def back() -> bool:
            now = entry(container, "ballast")
            return now["state"] == PluginState.ACTIVE and now["restarts"] >= 3

        wait_until(back, what="the plugin back after three deaths")
        time.sleep(0.3)  # a fourth death would show by now
        assert entry(container, "ballast")["restarts"] == 3  # the first worker, two more
        assert container.send_message("ballast", size)["size"] == 0
