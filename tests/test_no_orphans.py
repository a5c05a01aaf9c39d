"""No process outlives its reason to exist: after shutdown(), after the supervisor is
SIGKILLed, and after the process that started the supervisor dies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from spec_kit_contracts import Command

from conftest import (
    _SEEN_PIDS,
    GOOD,
    PLUGINS,
    all_gone,
    copy_plugin,
    data_folder,
    kill_survivors,
    pid_alive,
    plugin_pids,
    track,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import SupervisorUnavailable

pytestmark = pytest.mark.timeout(30)


def _start(container: PluginContainer, root: Path) -> dict[str, int]:
    container.discover_plugins([GOOD, root])
    for plugin_id in ("design", "audit", "idle_crashy"):
        container.load_plugin(container.discovered_plugins[plugin_id], config={})
        container.activate_plugin(plugin_id)
    pids = plugin_pids(container)
    assert set(pids) == {"design", "audit", "idle_crashy"}
    assert all(pid_alive(pid) for pid in pids.values())
    track(container)
    return pids


def test_shutdown_leaves_no_worker(tmp_path: Path) -> None:
    copy_plugin(PLUGINS / "crash" / "crashy", tmp_path, "idle_crashy")
    container = PluginContainer({"log_level": "WARNING"})
    try:
        supervisor_pid = container.status()["supervisor"]["pid"]
        workers = _start(container, tmp_path)
    finally:
        container.shutdown()
    # shutdown() returns once the supervisor has exited; its workers went before it.
    assert not pid_alive(supervisor_pid)
    all_gone(set(workers.values()), timeout=1.0, what="workers after shutdown()")


@pytest.mark.timeout(20)
def test_workers_die_with_a_sigkilled_supervisor(tmp_path: Path) -> None:
    copy_plugin(PLUGINS / "crash" / "crashy", tmp_path, "idle_crashy")
    container = PluginContainer({"log_level": "WARNING", "data_dir": str(tmp_path / "data")})
    supervisor_pid = container.status()["supervisor"]["pid"]
    workers: dict[str, int] = {}
    try:
        workers = _start(container, tmp_path)
        assert container.send_message(
            "idle_crashy", Command(command_name="idle_crashy:ping"))["pong"] \
            == workers["idle_crashy"]
        # A request is in flight (its handler spins) when the supervisor is killed.
        marker = data_folder(tmp_path / "data", "idle_crashy") / "in-progress"
        outcome: list[tuple[BaseException, float]] = []

        def call() -> None:
            try:
                container.send_message("idle_crashy", Command(
                    command_name="idle_crashy:hang", options={"marker": str(marker)}))
            except BaseException as exc:
                outcome.append((exc, time.monotonic()))

        caller = threading.Thread(target=call)
        caller.start()
        wait_until(marker.exists, timeout=5.0, what="the handler to start")
        killed_at = time.monotonic()
        os.kill(supervisor_pid, signal.SIGKILL)
        all_gone(set(workers.values()), timeout=2.0, what="workers of a SIGKILLed supervisor")
        caller.join(timeout=5.0)
        (error, failed_at), = outcome
        assert isinstance(error, SupervisorUnavailable), repr(error)
        assert failed_at - killed_at < 1.0
    finally:
        container.shutdown()  # the supervisor is gone: returns at once, cleans up
        kill_survivors(set(workers.values()))
    assert not pid_alive(supervisor_pid)


PARENT_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from spec_kit_runtime import PluginContainer

    container = PluginContainer({"log_level": "WARNING"})
    container.discover_plugins([Path(sys.argv[1])])
    for plugin_id in ("design", "audit"):
        container.load_plugin(container.discovered_plugins[plugin_id], config={})
        container.activate_plugin(plugin_id)
    status = container.status()
    Path(sys.argv[2]).write_text(json.dumps({
        "supervisor": status["supervisor"]["pid"],
        "endpoint": status["supervisor"]["endpoint"],
        "workers": [p["pid"] for p in status["plugins"]],
    }))
    os._exit(0)  # no shutdown(), no atexit, no finalizers
""")


@pytest.mark.timeout(30)
def test_supervisor_and_workers_exit_when_their_starter_dies(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    parent = subprocess.Popen([sys.executable, "-c", PARENT_SCRIPT, str(GOOD), str(report_file)],
                              stdin=subprocess.DEVNULL)
    try:
        assert parent.wait(timeout=20) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    report = json.loads(report_file.read_text())
    supervisor_pid, workers = report["supervisor"], set(report["workers"])
    _SEEN_PIDS.update({supervisor_pid, *workers})
    assert len(workers) == 2 and supervisor_pid not in workers
    private = Path(report["endpoint"].removeprefix("ipc://")).parent.parent
    try:
        all_gone({supervisor_pid, *workers}, timeout=5.0,
                 what="supervisor and workers of a dead starter")
        assert not private.exists()  # the supervisor removed its folder as it exited
    finally:
        kill_survivors({supervisor_pid, *workers})
        if private.name.startswith("spec-kit-runtime-"):
            shutil.rmtree(private, ignore_errors=True)


def test_container_started_from_a_short_lived_thread_keeps_working() -> None:
    """The supervisor watches the starting *process*, not the thread that started it."""
    made: list[PluginContainer] = []
    starter = threading.Thread(
        target=lambda: made.append(PluginContainer({"log_level": "WARNING"})))
    starter.start()
    starter.join(timeout=20)
    (container,) = made
    try:
        container.discover_plugins([GOOD])
        container.load_plugin(container.discovered_plugins["design"], config={})
        container.activate_plugin("design")
        pids = track(container)
        assert container.send_message(
            "design", Command(command_name="design:generate", arguments=["t"]))["doc"] == "# t"
        assert all(pid_alive(pid) for pid in pids)
    finally:
        container.shutdown()
    all_gone(pids, timeout=1.0, what="supervisor and workers after shutdown()")
