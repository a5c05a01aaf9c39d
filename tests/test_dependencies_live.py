"""Dependencies with real workers: start-up order, refusals, shutdown order, rest_for_one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, copy_plugin, load_active, plugin_pids, running_container, wait_until
from spec_kit_runtime import PluginStateError, WorkerDiedError
from test_cli import run_control, start_run, stop_run, wait_active, wait_busy

pytestmark = pytest.mark.timeout(40)
CRASHY = PLUGINS / "crash" / "crashy"


def test_run_starts_dependencies_first_and_stops_them_last(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    copy_plugin(CRASHY, plugins, "db")
    copy_plugin(CRASHY, plugins, "api", dependencies=["db"])
    copy_plugin(CRASHY, plugins, "ui", dependencies=["api"])
    copy_plugin(CRASHY, plugins, "loop_a", dependencies=["loop_b"])
    copy_plugin(CRASHY, plugins, "loop_b", dependencies=["loop_a"])
    copy_plugin(CRASHY, plugins, "orphan", dependencies=["ghost"])
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--plugins", str(plugins), "--runtime-dir", str(runtime_dir),
                    runtime_dir=runtime_dir)
    try:
        status = wait_active(run, {"db", "api", "ui"})
        assert {p["id"] for p in status["plugins"]} == {"db", "api", "ui"}
    finally:
        stop_run(run)
    log = run.log.read_text()
    active = [m.group(1) for m in re.finditer(r"plugin (\w+) is active", log)]
    assert active == ["db", "api", "ui"]
    assert "plugin loop_a not started: dependency cycle loop_a -> loop_b -> loop_a" in log
    assert "plugin orphan not started: needs 'ghost', which is not there" in log
    stopped = [m.group(1) for m in re.finditer(r"plugin (\w+): worker exited", log)]
    assert stopped == ["ui", "api", "db"]


def test_load_refuses_a_missing_dependency(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "needy", dependencies=["base"])
    with running_container() as container:
        container.discover_plugins([tmp_path])
        with pytest.raises(PluginStateError, match="depends on 'base', which is not loaded"):
            container.load_plugin(container.discovered_plugins["needy"])


def test_rest_for_one_restarts_dependents_after_the_plugin(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "base")
    copy_plugin(CRASHY, tmp_path, "mid", dependencies=["base"])
    copy_plugin(CRASHY, tmp_path, "side")
    with running_container(strategy="rest_for_one",
                           restart={"backoff_initial": 0.05}) as container:
        for plugin_id in ("base", "mid", "side"):
            load_active(container, tmp_path, plugin_id)
        before = plugin_pids(container)
        with pytest.raises(WorkerDiedError):
            container.send_message("base", Command(command_name="base:exit"))

        def replaced() -> bool:
            now = plugin_pids(container)
            return all(now.get(p) not in (None, before[p]) for p in ("base", "mid"))

        wait_until(replaced, timeout=10)
        assert plugin_pids(container)["side"] == before["side"]  # not a dependent



def test_a_restart_during_run_s_start_still_starts_the_dependents(tmp_path: Path) -> None:
    """A restart asked while ``run`` activates a plugin interrupts that activate; ``run``
    then waits for the restart, not counting it as a failed start (its dependents were
    refused for good, and health stayed unhealthy)."""
    plugins = tmp_path / "plugins"
    copy_plugin(CRASHY, plugins, "slow")
    copy_plugin(CRASHY, plugins, "after", dependencies=["slow"])
    config = tmp_path / "runtime.yaml"
    config.write_text("plugins:\n  slow:\n    config: {slow_activate: 1.5}\n")
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--config", str(config), "--plugins", str(plugins),
                    "--runtime-dir", str(runtime_dir), runtime_dir=runtime_dir)
    try:
        wait_busy(run, "slow", "activate")
        run_control(run, "restart", plugin="slow")
        wait_active(run, {"slow", "after"}, timeout=20.0)
    finally:
        stop_run(run)
    assert "plugin after not started" not in run.log.read_text()
