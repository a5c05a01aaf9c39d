"""The ``spec-kit-runtime`` command, run as real subprocesses: run, status, send, SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import _SEEN_PIDS, GOOD, all_gone, pid_alive, wait_until
from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.errors import RuntimeFailure

pytestmark = pytest.mark.timeout(30)
SCRIPT = shutil.which("spec-kit-runtime", path=str(Path(sys.executable).parent)) \
    or "spec-kit-runtime"


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    runtime_dir: Path
    log: Path
    env: dict[str, str]


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL, check=False)


def start_run(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
              runtime_dir: Path | None = None) -> Run:
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen([SCRIPT, "run", *args], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env)
    _SEEN_PIDS.add(process.pid)
    assert runtime_dir is not None
    return Run(process, runtime_dir, log, env or dict(os.environ))


def stop_run(run: Run) -> None:
    if run.process.poll() is None:
        run.process.terminate()
        try:
            run.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()


def run_control(run: Run, op: str, **args: Any) -> Any:
    """Control operation ``op`` on the supervisor of ``run`` (its control socket)."""
    client = SupervisorClient.find(run.runtime_dir, control=True)
    try:
        return client.control(op, timeout=10.0, **args)
    finally:
        client.close()


def wait_busy(run: Run, plugin_id: str, operation: str, timeout: float = 15.0) -> None:
    """Wait until ``run``'s supervisor has ``operation`` under way on ``plugin_id``."""
    def busy() -> bool:
        try:
            entries = run_control(run, "status")["plugins"]
        except RuntimeFailure:  # not listening yet
            return False
        return any(p["id"] == plugin_id and p["busy"] == operation for p in entries)

    wait_until(busy, timeout, interval=0.05, what=f"{operation} of {plugin_id} under way")


def wait_active(run: Run, plugins: set[str], timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the supervisor of ``run`` reports ``plugins`` active; returns its status."""

    def status() -> dict[str, Any] | None:
        if run.process.poll() is not None:
            raise AssertionError(f"run exited ({run.process.returncode}):\n"
                                 f"{run.log.read_text()}")
        if not (run.runtime_dir / "supervisor.json").exists():
            return None
        try:
            client = SupervisorClient.find(run.runtime_dir)
        except RuntimeFailure:
            return None
        try:
            result: dict[str, Any] = client.control("status", timeout=5.0)
        finally:
            client.close()
        states = {p["id"]: p["state"] for p in result["plugins"]}
        return result if all(states.get(p) == "active" for p in plugins) else None

    result = wait_until(status, timeout, interval=0.05, what=f"{sorted(plugins)} active")
    _SEEN_PIDS.update(p["pid"] for p in result["plugins"] if p["pid"])
    return result


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """``spec-kit-runtime run --config FILE --runtime-dir D`` for the whole module."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "runtime.yaml"
    config.write_text(yaml.safe_dump({
        "runtime": {"plugin_paths": [str(GOOD)], "log_level": "WARNING"},
        "plugins": {"design": {"config": {"enabled": True}}, "audit": {"enabled": True}},
    }))
    runtime_dir = root / "rt"
    run = start_run(root, "--config", str(config), "--runtime-dir", str(runtime_dir),
                    runtime_dir=runtime_dir)
    try:
        wait_active(run, {"design", "audit"})
        yield run
    finally:
        stop_run(run)


def test_status_lists_plugins_with_pids(configured: Run) -> None:
    result = cli("status", "--runtime-dir", str(configured.runtime_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"supervisor pid {configured.process.pid}" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["design"][1:3] == ["1.2.0", "active"]
    assert rows["audit"][1:3] == ["0.3.1", "active"]
    pids = {int(rows["design"][3]), int(rows["audit"][3])}
    assert len(pids | {configured.process.pid}) == 3
    assert all(pid_alive(pid) for pid in pids)


def test_status_json(configured: Run) -> None:
    result = cli("status", "--json", "--runtime-dir", str(configured.runtime_dir))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["supervisor"]["pid"] == configured.process.pid
    plugins = {p["id"]: p for p in status["plugins"]}
    assert set(plugins) == {"design", "audit"}
    for entry in plugins.values():
        assert entry["state"] == "active"
        assert isinstance(entry["pid"], int) and pid_alive(entry["pid"])
    assert plugins["design"]["version"] == "1.2.0"


def test_send_prints_the_reply_as_json(configured: Run) -> None:
    result = cli("send", "design", "command:design:generate", "--payload",
                 '{"arguments": ["x"]}', "--runtime-dir", str(configured.runtime_dir))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"doc": "# x", "options": {}}

    validated = cli("send", "design", "validator:python", "--payload", '{"code": "f(1)"}',
                    "--runtime-dir", str(configured.runtime_dir))
    assert validated.returncode == 0, validated.stderr
    assert json.loads(validated.stdout)["valid"] is True

    hooks = cli("send", "audit", "hook:audit", "--payload", '{"n": 1}',
                "--runtime-dir", str(configured.runtime_dir))
    assert hooks.returncode == 0, hooks.stderr
    assert [r["plugin"] for r in json.loads(hooks.stdout)] == ["audit", "design"]


def test_send_errors_exit_nonzero_with_the_reason(configured: Run) -> None:
    refused = cli("send", "audit", "command:design:generate",
                  "--runtime-dir", str(configured.runtime_dir))
    assert refused.returncode != 0
    assert "may not send 'command:design:generate'" in refused.stderr
    assert refused.stdout == ""

    nobody = cli("send", "design", "validator:cobol", "--runtime-dir",
                 str(configured.runtime_dir))
    assert nobody.returncode != 0 and "validator:cobol" in nobody.stderr

    bad_json = cli("send", "design", "command:design:generate", "--payload", "{nope",
                   "--runtime-dir", str(configured.runtime_dir))
    assert bad_json.returncode != 0 and "--payload is not JSON" in bad_json.stderr


@pytest.mark.timeout(40)
def test_send_waits_for_a_restarting_plugin_unless_told_to_fail_fast(tmp_path: Path) -> None:
    config = tmp_path / "runtime.yaml"
    config.write_text(yaml.safe_dump({"runtime": {
        "plugin_paths": [str(GOOD)], "log_level": "WARNING",
        "restart": {"backoff_initial": 2.0, "stable_after": 1000}}}))
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--config", str(config), "--runtime-dir", str(runtime_dir),
                    runtime_dir=runtime_dir)
    try:
        def active_design(killed: set[int]) -> int | None:
            """design's worker pid once it is active with a worker not killed yet."""
            found = next(p for p in run_control(run, "status")["plugins"]
                         if p["id"] == "design")
            pid: int | None = found["pid"]
            return pid if found["state"] == "active" and pid not in killed else None

        wait_active(run, {"design"})
        killed: set[int] = set()
        for _ in range(2):  # the first restart is at once, the second after 2 s
            pid = wait_until(lambda: active_design(killed), 10.0, what="design active")
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        wait_until(lambda: any(p["id"] == "design" and p["state"] == "restarting"
                               for p in run_control(run, "status")["plugins"]), 10.0,
                   what="design restarting")
        args = ("send", "design", "command:design:generate", "--runtime-dir", str(runtime_dir))
        fast = cli(*args, "--fail-fast")
        assert fast.returncode != 0 and "'design' is restarting" in fast.stderr
        waited = cli(*args)  # held until the replacement is active
        assert waited.returncode == 0, waited.stderr
        assert json.loads(waited.stdout)["doc"].startswith("#")
    finally:
        stop_run(run)


@pytest.mark.timeout(40)
def test_sigterm_stops_run_in_order_and_found_without_flags(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(xdg)}
    runtime_dir = xdg / "spec-kit-runtime"
    run = start_run(tmp_path, "--plugins", str(GOOD), env=env, runtime_dir=runtime_dir)
    try:
        status = wait_active(run, {"design", "audit"})
        workers = {p["pid"] for p in status["plugins"]}

        # status and send find the supervisor without --runtime-dir.
        found = cli("status", "--json", env=env)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["supervisor"]["pid"] == run.process.pid
        sent = cli("send", "design", "command:design:generate", "--payload",
                   '{"arguments": ["y"]}', env=env)
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["doc"] == "# y"

        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=15) == 0, run.log.read_text()
        all_gone(workers, timeout=2.0, what="workers after SIGTERM")
        assert not (runtime_dir / "supervisor.json").exists()
    finally:
        stop_run(run)

    # A send to the stopped supervisor fails fast and says why.
    started = time.monotonic()
    stopped = cli("send", "design", "command:design:generate", env=env, timeout=10)
    assert time.monotonic() - started < 5.0
    assert stopped.returncode != 0
    assert "no running supervisor" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    status_after = cli("status", "--runtime-dir", str(runtime_dir))
    assert status_after.returncode != 0 and "no running supervisor" in status_after.stderr


@pytest.mark.timeout(30)
def test_send_to_a_killed_supervisor_does_not_hang(tmp_path: Path) -> None:
    """A stale supervisor.json (SIGKILL leaves it behind): a clear error, in bounded time."""
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--plugins", str(GOOD), "--runtime-dir", str(runtime_dir),
                    runtime_dir=runtime_dir)
    try:
        status = wait_active(run, {"design"})
        workers = {p["pid"] for p in status["plugins"]}
        run.process.kill()
        run.process.wait(timeout=10)
        all_gone(workers, timeout=2.0, what="workers of a SIGKILLed run")
    finally:
        stop_run(run)
    started = time.monotonic()
    result = cli("send", "design", "command:design:generate", "--runtime-dir",
                 str(runtime_dir), timeout=20)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "supervisor" in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 3.0, f"took {elapsed:.1f}s"


def test_restart_stop_start_commands(configured: Run) -> None:
    where = ("--runtime-dir", str(configured.runtime_dir))

    def audit_row() -> list[str]:
        lines = cli("status", *where).stdout.splitlines()
        return next(line.split() for line in lines if line.startswith("audit "))

    before = audit_row()[3]
    result = cli("restart", "audit", *where)
    assert result.returncode == 0 and result.stdout.strip() == "audit: active", result.stderr
    assert audit_row()[3] != before
    assert cli("stop", "audit", *where).stdout.strip() == "audit: stopped"
    assert audit_row()[2:4] == ["stopped", "-"]
    assert cli("start", "audit", *where).stdout.strip() == "audit: active"
    assert audit_row()[2] == "active"
    missing = cli("restart", "nope", *where)
    assert missing.returncode == 1 and "'nope' is not loaded" in missing.stderr


def test_run_starts_the_fork_server_before_loading_the_contracts() -> None:
    """``run`` starts the fork server before the contracts and the codec are imported (so
    that the two processes import in parallel): ``cli`` and ``cli_run`` load neither."""
    probe = ("import sys, spec_kit_runtime.cli.main, spec_kit_runtime.cli.run; print(sorted("
             "m for m in sys.modules if m.split('.')[0] in ('spec_kit_contracts', 'msgpack', "
             "'zmq', 'yaml') or m in ('spec_kit_runtime.wire.codec', 'spec_kit_runtime.errors', "
             "'spec_kit_runtime.wire.protocol')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_a_runtime_failure_is_one_line_and_exit_code_1_or_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from spec_kit_runtime.cli import main
    from spec_kit_runtime.errors import SupervisorUnavailable

    def failing(_args: object) -> int:
        raise SupervisorUnavailable("no running supervisor here")

    monkeypatch.setattr(main, "_handler", lambda _name: failing)
    assert main.main(["status"]) == 1
    assert main.main(["run"]) == 2
    assert capsys.readouterr().err == "error: no running supervisor here\n" * 2


def test_any_other_exception_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from spec_kit_runtime.cli import main

    def failing(_args: object) -> int:
        raise ValueError("a bug")

    monkeypatch.setattr(main, "_handler", lambda _name: failing)
    with pytest.raises(ValueError, match="a bug"):
        main.main(["status"])

