"""Health and status against real state: figures count real calls, a killed worker shows in
status with its reason, health goes degraded and back, and the CLI's exit codes follow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import (
    GOOD,
    PLUGINS,
    load_active,
    plugin_entry,
    running_container,
    runtime_dir_of,
    wait_until,
)
from spec_kit_runtime import HandlerError
from test_cli import cli, start_run, stop_run, wait_active

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"



def test_status_counts_messages_errors_and_latency() -> None:
    with running_container(watchdog_interval=0.1) as container:
        load_active(container, GOOD, "design")
        for _ in range(5):
            container.send_message("design", Command(command_name="design:generate",
                                                     arguments=["x"]))
        with pytest.raises(HandlerError):
            container.send_message("design", Command(command_name="design:emit"))  # no args
        messages = plugin_entry(container, "design")["messages"]
        assert (messages["handled"], messages["errors"], messages["in_flight"]) == (6, 1, 0)
        assert 0 < messages["p50_ms"] <= messages["p99_ms"] < 5000
        usage = wait_until(lambda: plugin_entry(container, "design")["usage"], what="a sample")
        assert usage["open_files"] > 0 and usage["rss_mb"] > 0
        totals = container.status()["supervisor"]["totals"]
        assert totals["handled"] >= 6 and totals["errors"] >= 1


def test_a_killed_worker_shows_in_status_and_health_goes_degraded_and_back() -> None:
    with running_container(restart={"stable_after": 3.0}) as container:
        load_active(container, CRASHY, "crashy")
        assert container.health() == {"status": "healthy", "live": True, "ready": True,
                                       "reasons": []}
        with pytest.raises(Exception, match="killed by SIGSEGV"):
            container.send_message("crashy", Command(command_name="crashy:segv"))
        wait_until(lambda: plugin_entry(container, "crashy")["state"] == "active")
        crashed = plugin_entry(container, "crashy")
        assert crashed["restarts"] == 1 and crashed["last_exit"] == "killed by SIGSEGV"
        assert isinstance(crashed["last_exit_at"], float)
        health = container.health()
        assert health["status"] == "degraded" and health["ready"]
        assert health["reasons"][0].startswith("crashy: restarted")
        assert "killed by SIGSEGV" in health["reasons"][0]
        wait_until(lambda: container.health()["status"] == "healthy", timeout=10.0,
                   what="health back once the worker is stable")


def test_a_failed_plugin_is_unhealthy_and_the_cli_exits_2() -> None:
    with running_container(restart={"max_restarts": 0}) as container:
        load_active(container, CRASHY, "crashy")
        runtime_dir = str(runtime_dir_of(container))
        probe = cli("health", "--runtime-dir", runtime_dir)
        assert probe.returncode == 0 and probe.stdout.startswith("healthy"), probe.stderr
        with pytest.raises(Exception, match="exited with code 3"):
            container.send_message("crashy", Command(command_name="crashy:exit"))
        wait_until(lambda: plugin_entry(container, "crashy")["state"] == "failed")
        probe = cli("health", "--runtime-dir", runtime_dir)
        assert probe.returncode == 2
        assert probe.stdout.splitlines()[0] == "unhealthy (live: yes, ready: no)"
        assert "crashy: failed" in probe.stdout


def test_health_exits_2_when_no_supervisor_answers(tmp_path: Path) -> None:
    (tmp_path / "rt").mkdir(mode=0o700)
    probe = cli("health", "--json", "--runtime-dir", str(tmp_path / "rt"))
    assert probe.returncode == 2
    assert '"live": false' in probe.stdout


def test_a_configured_plugin_that_fails_to_activate_is_unhealthy(tmp_path: Path) -> None:
    config = tmp_path / "runtime.yaml"
    config.write_text(json.dumps({
        "runtime": {"plugin_paths": [str(PLUGINS / "bad" / "faulty"), str(GOOD)]},
        "plugins": {"faulty": {"config": {"fail_in": "activate"}}, "audit": {"enabled": False}},
    }))  # JSON is YAML
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--config", str(config), "--runtime-dir", str(runtime_dir),
                    runtime_dir=runtime_dir)
    try:
        wait_active(run, {"design"})

        def probe() -> Any:
            answer = cli("health", "--json", "--runtime-dir", str(runtime_dir))
            return answer if answer.returncode == 2 else None

        answer = wait_until(probe, timeout=15, what="health unhealthy")
        verdict = json.loads(answer.stdout)
        assert verdict["ready"] is False
        assert [r.split(":")[0] for r in verdict["reasons"]] == ["faulty"]
        assert "failed in activate" in verdict["reasons"][0]
    finally:
        stop_run(run)
