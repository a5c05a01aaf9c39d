"""The code cache with real workers: a restarted plugin runs the code its first worker
compiled (seen in the timeline marks: ``code-cached``), never a stale one after an edit, and
its return channel is closed before any plugin code runs."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import psutil
import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, copy_plugin, load_active, plugin_entry, running_container, wait_until
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.logs import timeline
from test_spare_worker import forkserver_of, the_spare

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"
PEEKER = PLUGINS / "cache" / "peeker"
RESTART = {"backoff_initial": 0.01, "backoff_max": 0.05, "period": 60, "max_restarts": 10}


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The timeline on, for the supervisors this test starts (they inherit it)."""
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv(timeline.VARIABLE, str(folder))
    return folder


def steps(marks: Path, pid: int) -> list[str]:
    return [line.split()[1] for line in (marks / f"{pid}.marks").read_text().splitlines()]


def worker_of(container: PluginContainer, plugin_id: str) -> int:
    pid = plugin_entry(container, plugin_id)["pid"]
    assert isinstance(pid, int)
    return pid


def kill_and_wait(container: PluginContainer, plugin_id: str) -> int:
    """SIGKILL the plugin's worker; the replacement's pid, once it is active."""
    old = worker_of(container, plugin_id)
    os.kill(old, signal.SIGKILL)

    def back() -> int | None:
        entry = plugin_entry(container, plugin_id)
        return entry["pid"] if entry["pid"] not in (None, old) and entry["state"] == "active" \
            else None

    pid: int = wait_until(back, timeout=10, what=f"{plugin_id} restarted")
    return pid


def ping(container: PluginContainer, plugin_id: str) -> dict[str, object]:
    answer = container.send_message(plugin_id, Command(command_name=f"{plugin_id}:ping"))
    assert isinstance(answer, dict)
    return answer


def test_a_restarted_worker_runs_the_code_its_first_worker_compiled(
        tmp_path: Path, marks: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "phoenix")
    with running_container(restart=RESTART) as container:
        load_active(container, tmp_path, "phoenix")
        first = worker_of(container, "phoenix")
        second = kill_and_wait(container, "phoenix")
        third = kill_and_wait(container, "phoenix")
        assert ping(container, "phoenix")["pong"] == third
    assert "code-cached" not in steps(marks, first)  # a cold start compiles
    assert "plugin-compiled" in steps(marks, first)
    # The second may have compiled too: the spare it came from was forked 20 ms after the
    # first spawn, maybe before the first worker's code arrived. The third's spare was
    # forked after the second spawn, long after.
    assert "code-cached" in steps(marks, third)
    print(f"second worker from the cache: {'code-cached' in steps(marks, second)}")


def test_an_edited_plugin_runs_its_new_code_after_a_restart(tmp_path: Path, marks: Path) -> None:
    folder = copy_plugin(CRASHY, tmp_path, "phoenix")
    source = folder / "crashy_plugin.py"
    with running_container(restart=RESTART) as container:
        load_active(container, tmp_path, "phoenix")
        assert "edited" not in ping(container, "phoenix")
        old_code = source.read_text()
        new_code = old_code.replace('return {"pong": os.getpid()}',
                                    'return {"pong": os.getpid(), "edited": 1}')
        assert new_code != old_code
        source.write_text(new_code)
        edited = kill_and_wait(container, "phoenix")  # from the spare
        assert ping(container, "phoenix") == {"pong": edited, "edited": 1}
        assert "code-cached" not in steps(marks, edited)
        # The next worker forked directly (its spare killed), after the edited code came back.
        idle = the_spare(container)
        os.kill(idle, signal.SIGKILL)
        forkserver = psutil.Process(forkserver_of(container))
        wait_until(lambda: idle not in {child.pid for child in forkserver.children()},
                   what="the killed spare reaped")
        cached = kill_and_wait(container, "phoenix")
        assert ping(container, "phoenix") == {"pong": cached, "edited": 1}
        assert "code-cached" in steps(marks, cached)


def test_the_plugin_never_holds_its_return_channel(tmp_path: Path, marks: Path) -> None:
    copy_plugin(PEEKER, tmp_path, "peeker")
    with running_container(restart=RESTART) as container:
        load_active(container, tmp_path, "peeker")
        pid = worker_of(container, "peeker")  # forked directly; then twice from a spare
        for restart in range(3):
            seen = container.send_message("peeker", Command(command_name="peeker:fds"))
            kinds = {when: [kind for _, _, kind in seen[when]] for when in ("at_import", "now")}
            assert socket.SOCK_STREAM in kinds["now"], seen  # the probe sees ZeroMQ's socket
            for when in ("at_import", "now"):  # (at import, ZeroMQ may not have connected)
                assert socket.SOCK_SEQPACKET not in kinds[when], seen  # the return channel
            if restart < 2:
                pid = kill_and_wait(container, "peeker")
    assert "code-cached" in steps(marks, pid)
