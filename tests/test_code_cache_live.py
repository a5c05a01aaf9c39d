"""The code cache with real workers: a restarted plugin runs the code its first worker
compiled (seen in the timeline marks: ``code-cached``), never a stale one after an edit
(one that keeps the size and puts the mtime back included), its return channel and its
code's memfd are closed before any plugin code runs, and no worker holds, or finds in its
memory, another plugin's code."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
from pathlib import Path

import psutil
import pytest
from spec_kit_contracts import Command

from conftest import (
    PLUGINS,
    copy_plugin,
    edit_unseen,
    load_active,
    plugin_entry,
    running_container,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.logs import timeline
from test_spare_worker import forkserver_of, the_spare

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"
PEEKER = PLUGINS / "cache" / "peeker"
VAULT = PLUGINS / "cache" / "vault"
SNOOP = PLUGINS / "cache" / "snoop"
RESTART = {"backoff_initial": 0.01, "backoff_max": 0.05, "period": 60, "max_restarts": 10}


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The timeline on, for the supervisors this test starts (they inherit it)."""
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv(timeline.VARIABLE, str(folder))
    return folder


def all_steps(marks: Path, pid: int) -> list[str]:
    return [line.split()[1] for line in (marks / f"{pid}.marks").read_text().splitlines()]


def steps(marks: Path, pid: int) -> list[str]:
    """The steps process ``pid`` marked as a worker: from its bootstrap on (a spare marks
    its rehearsal before, which loads cached code of its own)."""
    taken = all_steps(marks, pid)
    return taken[taken.index("bootstrap"):]


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
        the_spare(container)  # each restart below is the spare's
        second = kill_and_wait(container, "phoenix")
        the_spare(container)
        third = kill_and_wait(container, "phoenix")
        assert ping(container, "phoenix")["pong"] == third
    # A direct fork (a cold start's) compiles and sends nothing back; the first worker
    # that was the spare compiles and sends its code; the next one runs it.
    assert "code-cached" not in steps(marks, first)
    assert "plugin-compiled" in steps(marks, first)
    assert "code-cached" not in steps(marks, second)
    assert "code-cached" in steps(marks, third)


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
        the_spare(container)
        edited = kill_and_wait(container, "phoenix")  # the spare: it sends its code back
        assert ping(container, "phoenix") == {"pong": edited, "edited": 1}
        assert "code-cached" not in steps(marks, edited)
        # The next worker forked directly (its spare killed), after the edited code came back.
        kill_the_spare(container)
        cached = kill_and_wait(container, "phoenix")
        assert ping(container, "phoenix") == {"pong": cached, "edited": 1}
        assert "code-cached" in steps(marks, cached)


def kill_the_spare(container: PluginContainer) -> None:
    """So that the next forked worker is forked directly."""
    idle = the_spare(container)
    os.kill(idle, signal.SIGKILL)
    forkserver = psutil.Process(forkserver_of(container))
    wait_until(lambda: idle not in {child.pid for child in forkserver.children()},
               what="the killed spare reaped")


def cached_restart(container: PluginContainer, plugin_id: str, marks: Path) -> int:
    """Restart the plugin until its worker runs cached code (its code is in the fork
    server then); that worker's pid."""
    for _ in range(3):
        the_spare(container)  # a worker forked directly sends no code back
        pid = kill_and_wait(container, plugin_id)
        if "code-cached" in steps(marks, pid):
            return pid
    raise AssertionError(f"{plugin_id}: no worker ran cached code")


def test_the_plugin_never_holds_its_return_channel_nor_its_code(
        tmp_path: Path, marks: Path) -> None:
    copy_plugin(PEEKER, tmp_path, "peeker")
    with running_container(restart=RESTART) as container:
        load_active(container, tmp_path, "peeker")
        pid = worker_of(container, "peeker")  # forked directly; then twice from a spare;
        for restart in range(4):  # then forked directly again, with the plugin's code
            seen = container.send_message("peeker", Command(command_name="peeker:fds"))
            kinds = {when: [kind for _, _, kind in seen[when]] for when in ("at_import", "now")}
            assert socket.SOCK_STREAM in kinds["now"], seen  # the probe sees ZeroMQ's socket
            for when in ("at_import", "now"):  # (at import, ZeroMQ may not have connected)
                assert socket.SOCK_SEQPACKET not in kinds[when], seen  # the return channel
                assert not [link for _, link, _ in seen[when] if "memfd:" in link], seen
                # nor the fork server's timeline file (its own marks file, it may hold)
                assert not [link for _, link, _ in seen[when] if link.endswith(".marks")
                            and not link.endswith(f"/{pid}.marks")], seen
            if restart == 2:
                kill_the_spare(container)
            elif restart < 2:
                the_spare(container)  # forked: the next worker is it (a suite's load may delay it)
            if restart < 3:
                pid = kill_and_wait(container, "peeker")
                if restart == 2:
                    assert "rehearsed" not in all_steps(marks, pid)  # forked directly
        assert "code-cached" in steps(marks, pid)


def test_no_worker_finds_another_plugins_code(tmp_path: Path, marks: Path) -> None:
    """The review's disclosure: plugin snoop's worker (from a spare, then forked directly)
    finds nothing of plugin vault's code, whose worker sent it to the fork server: not in
    an fd, not in what it inherited of the fork server, not anywhere in its memory."""
    copy_plugin(VAULT, tmp_path, "vault")
    copy_plugin(SNOOP, tmp_path, "snoop")
    secret = b"sk-live-TOPSECRET-0123456789-vault"
    assert secret in (VAULT / "vault_plugin.py").read_bytes()
    own = b"snoop-own-marker-0451-in-its-code"

    def look(needle: bytes) -> dict[str, object]:
        answer = container.send_message("snoop", Command(
            command_name="snoop:look",
            options={"prefix": needle[:8].decode(), "length": len(needle),
                     "sha256": hashlib.sha256(needle).hexdigest()}))
        assert isinstance(answer, dict)
        return answer

    with running_container(restart=RESTART) as container:
        load_active(container, tmp_path, "vault")
        cached_restart(container, "vault", marks)  # vault's code is the fork server's
        spare = the_spare(container)
        load_active(container, tmp_path, "snoop")
        assert worker_of(container, "snoop") == spare
        assert look(own)["copies"], "the look finds nothing, not even its own code"
        from_spare = look(secret)
        kill_the_spare(container)  # snoop's code is the fork server's: its spare sent it
        direct = kill_and_wait(container, "snoop")  # holds its own code at its start
        assert "code-cached" in steps(marks, direct)
        assert "rehearsed" not in all_steps(marks, direct)  # forked directly
        forked = look(secret)
        assert forked["pid"] == direct
    for seen in (from_spare, forked):
        assert seen["memfds_at_import"] == seen["memfds_now"] == [], seen
        assert seen["stores"] == [0], seen  # the fork server's, inherited: emptied
        assert seen["copies"] == 0, seen


def test_a_same_size_edit_with_its_mtime_put_back_runs_after_a_restart(
        tmp_path: Path, marks: Path) -> None:
    """The review's stale code: size, inode and mtime as before, the bytes not."""
    folder = copy_plugin(CRASHY, tmp_path, "phoenix")
    source = folder / "crashy_plugin.py"
    with running_container(restart=RESTART) as container:
        load_active(container, tmp_path, "phoenix")
        cached_restart(container, "phoenix", marks)  # its code is the fork server's
        edit_unseen(source, b'{"pong": os.getpid()}', b'{"PONG": os.getpid()}')
        edited_pid = kill_and_wait(container, "phoenix")
        assert "code-cached" not in steps(marks, edited_pid)
        assert ping(container, "phoenix") == {"PONG": edited_pid}
        again = kill_and_wait(container, "phoenix")  # the edited code, from the cache or not
        assert ping(container, "phoenix") == {"PONG": again}
