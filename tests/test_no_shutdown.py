"""A caller that makes a PluginContainer, uses it and exits without ``shutdown()`` (as
Spec-Kit's CLI does after every command) leaves nothing behind: no process, no folder in
TMPDIR, and nothing on its terminal after it returned. The private supervisor's log is in
its own file instead."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from spec_kit_contracts import Command

from conftest import (
    _SEEN_PIDS,
    GOOD,
    STATE_HOME,
    all_gone,
    kill_survivors,
    load_active,
    running_container,
    runtime_dir_of,
    supervisor_log,
    track,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import SupervisorUnavailable

pytestmark = pytest.mark.timeout(60)

# The caller: logging at INFO as Spec-Kit's CLI sets it up, a plugin loaded, activated and
# sent a message; then it reports its supervisor's processes (and which of them hold its
# stdout or stderr: none may) and ends by ``how``, never calling shutdown().
CALLER = textwrap.dedent("""
    import json, logging, os, signal, sys
    from pathlib import Path
    from spec_kit_contracts import Command
    from spec_kit_runtime import PluginContainer

    logging.basicConfig(level=logging.INFO)
    how, plugins, report = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    container = PluginContainer()
    container.discover_plugins([plugins])
    container.load_plugin(container.discovered_plugins["design"], config={})
    container.activate_plugin("design")
    reply = container.send_message(
        "design", Command(command_name="design:generate", arguments=["One", "shot"]))
    status = container.status()
    supervisor = status["supervisor"]
    pids = [supervisor["pid"], supervisor["forkserver_pid"], *(p["pid"] for p in status["plugins"])]
    ours = {os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)}
    holders = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError as exc:
            holders[str(pid)] = f"cannot tell: {exc}"
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in ours:
                    holders.setdefault(str(pid), []).append(fd)
            except OSError:
                pass
    report.write_text(json.dumps({"pids": pids, "holders": holders,
                                  "log_file": supervisor["log_file"]}))
    print(f"caller: {reply['doc']}", flush=True)
    if how == "raise":
        raise RuntimeError("caller: uncaught")
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A fresh folder with a short path (ipc socket paths are limited to 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="skr-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(("how", "code"), [("exit", 0), ("raise", 1), ("kill", -9)])
def test_a_caller_that_never_shuts_down_leaves_nothing(short_tmp: Path, how: str,
                                                       code: int) -> None:
    tmpdir, state, report = short_tmp / "tmp", short_tmp / "state", short_tmp / "report.json"
    tmpdir.mkdir()
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER, how, str(GOOD), str(report)],
        env={**os.environ, "TMPDIR": str(tmpdir), "XDG_STATE_HOME": str(state)},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Until EOF on both pipes: it comes only when every holder of their write ends is
        # gone, the caller's supervisor, fork server and workers included.
        out, err = caller.communicate(timeout=40)
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.communicate()
    facts = json.loads(report.read_text())
    pids = set(facts["pids"])
    _SEEN_PIDS.update(pids)
    try:
        assert caller.returncode == code, err
        assert facts["holders"] == {}, "the caller's stdout or stderr is shared"
        assert out == "caller: # One shot\n"
        if how == "raise":
            assert err.startswith("Traceback") and err.endswith("RuntimeError: caller: uncaught\n")
            assert "spec_kit_runtime" not in err, err
        else:
            assert err == ""
        all_gone(pids, timeout=10.0, what="the supervisor, fork server and worker")
        wait_until(lambda: not any(tmpdir.iterdir()), timeout=10.0, what="TMPDIR emptied")
    finally:
        kill_survivors(pids)
    log_file = Path(facts["log_file"])
    assert log_file.parent == state / "spec-kit-runtime" / "logs"
    logged = log_file.read_text()
    for line in (r"INFO spec_kit_runtime.supervisor.loop: supervisor \d+ listening on ipc://",
                 r"INFO spec_kit_runtime.supervisor.workers: plugin design: worker pid \d+ started",
                 "WARNING spec_kit_runtime.supervisor.loop: the process that started this "
                 "supervisor is gone; stopping",
                 "INFO spec_kit_runtime.supervisor.loop: supervisor stopped"):
        assert re.search(line, logged), (line, logged)


@pytest.fixture
def in_short_tmp(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``short_tmp`` as this process's TMPDIR, where containers make their folders."""
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    return short_tmp


def test_the_private_supervisor_logs_to_its_file_not_the_callers_stderr(
        in_short_tmp: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with running_container(log_level="INFO") as container:
        load_active(container, GOOD, "design")
        container.send_message("design", Command(command_name="design:generate",
                                                 arguments=["x"]))
        log_file = Path(container.status()["supervisor"]["log_file"])
        assert log_file.parent == STATE_HOME / "spec-kit-runtime" / "logs"
        assert "plugin design: worker pid" in supervisor_log(container)
    assert "supervisor stopped" in log_file.read_text()
    captured = capfd.readouterr()
    assert "spec_kit_runtime" not in captured.out + captured.err
    assert list(in_short_tmp.iterdir()) == []  # shutdown() as before: the folder is gone


def test_log_dir_chooses_the_folder(tmp_path: Path, in_short_tmp: Path) -> None:
    with running_container(log_dir=str(tmp_path / "logs"), log_level="INFO") as container:
        log_file = Path(container.status()["supervisor"]["log_file"])
    assert log_file.parent == tmp_path / "logs"
    assert "supervisor stopped" in log_file.read_text()


def test_a_failed_start_says_why_and_leaves_nothing(in_short_tmp: Path) -> None:
    with pytest.raises(SupervisorUnavailable) as raised:
        PluginContainer({"log_level": "LOUD"})
    message = str(raised.value)
    assert "the supervisor did not start (exit code 2)" in message
    assert "'runtime.log_level' must be DEBUG, INFO, WARNING or ERROR" in message
    assert list(in_short_tmp.iterdir()) == []
    assert not [p for p in psutil.Process().children(recursive=True)
                if "spec_kit" in " ".join(p.cmdline())]


def test_the_folder_of_a_killed_supervisor_is_swept_by_the_next_start(
        in_short_tmp: Path) -> None:
    with running_container() as first:
        folder = runtime_dir_of(first).parent
        pids = track(first)
        os.kill(first.status()["supervisor"]["pid"], signal.SIGKILL)
        all_gone(pids, what="a SIGKILLed supervisor's tree")
        assert folder.is_dir()  # nobody was left to remove it
        with running_container() as second:
            assert not folder.exists()
            assert runtime_dir_of(second).parent.is_dir()
    assert list(in_short_tmp.iterdir()) == []
