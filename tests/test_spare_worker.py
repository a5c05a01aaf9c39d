"""The fork server's spare worker: forked ahead of time, idle and holding nothing of the fork
server's, it becomes the next forked worker (a restart's too) with the same confinement; a
dead spare costs no spawn; it is never swept, and never outlives the fork server."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from spec_kit_contracts import Command

from conftest import (
    _SEEN_PIDS,
    GOOD,
    PLUGINS,
    all_gone,
    copy_plugin,
    landlock_support,
    load_active,
    pid_alive,
    plugin_entry,
    plugin_pids,
    running_container,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.linux.process_tree import OWNER_VARIABLE
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.birth import spare
from spec_kit_worker.confinement.landlock import Ruleset

pytestmark = pytest.mark.timeout(40)
CRASHY = PLUGINS / "crash" / "crashy"
ESCAPIST = PLUGINS / "crash" / "escapist"
INTRUDER = PLUGINS / "rogue" / "intruder"
ABI, NO_LANDLOCK = landlock_support()
BOOT = Bootstrap(endpoint="ipc:///x", plugin_id="p", secret=b"s" * 32, parent_pid=1,
                 plugin_file="/p.py", entry_point="P", sandbox=True, scope=("a", "b"),
                 max_message_bytes=1 << 20, request_timeout=1.0, memory_mb=None,
                 cpu_seconds=None, open_files=None, cgroups=(), plugin_dir="/",
                 data_dir="/d", landlock=True, network=False, own_network=True, uid=None,
                 gid=None)


# -- the fork server's children, seen from outside -------------------------------------------

def forkserver_of(container: PluginContainer) -> int:
    pid = container.status()["supervisor"]["forkserver_pid"]
    assert isinstance(pid, int)
    return pid


def idle_children(container: PluginContainer) -> set[int]:
    """The fork server's children that are no worker of the container's."""
    workers = set(plugin_pids(container).values())
    return {child.pid for child in psutil.Process(forkserver_of(container)).children()
            if child.pid not in workers and pid_alive(child.pid)}


def the_spare(container: PluginContainer) -> int:
    """The fork server's one idle spare, once set up and waiting (it is forked after a
    spawn's answer, then sets itself up: a session of its own, then the wait)."""
    found = wait_until(lambda: idle_children(container), what="a spare worker")
    assert len(found) == 1, f"more than one idle child: {found}"
    (pid,) = found
    _SEEN_PIDS.add(pid)
    wait_until(lambda: os.getsid(pid) == pid
               and psutil.Process(pid).status() == psutil.STATUS_SLEEPING,
               what="the spare set up and waiting")
    return pid


def ping(container: PluginContainer, plugin_id: str) -> int:
    pong = container.send_message(plugin_id, Command(command_name=f"{plugin_id}:ping"))["pong"]
    assert isinstance(pong, int)
    return pong


@pytest.fixture
def crashies(tmp_path: Path) -> Path:
    """Folders of three copies of the crashy plugin: one, two, three."""
    for plugin_id in ("one", "two", "three"):
        copy_plugin(CRASHY, tmp_path, plugin_id)
    return tmp_path


def test_a_forked_worker_leaves_one_idle_spare_that_holds_nothing_of_the_fork_servers(
        crashies: Path) -> None:
    with running_container() as container:
        load_active(container, crashies, "one")
        forkserver = forkserver_of(container)
        pid = the_spare(container)
        idle = psutil.Process(pid)
        assert idle.ppid() == forkserver
        assert os.getsid(pid) == pid  # its own session, as a worker's
        assert idle.status() == psutil.STATUS_SLEEPING
        assert idle.num_threads() == 1  # no ZeroMQ yet: nothing of a worker started
        assert OWNER_VARIABLE not in idle.environ()
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert set(fds) - {0, 1, 2} and len(fds) == 4, fds  # 0-2 and its channel, no more
        (channel,) = (link for fd, link in fds.items() if fd > 2)
        assert channel.startswith("socket:")
        assert fds[1].startswith("pipe:") and fds[2].startswith("pipe:")
        print(f"idle spare: USS {idle.memory_full_info().uss / 2**20:.2f} MiB")


def test_the_next_forked_worker_is_the_spare_and_a_new_spare_follows(crashies: Path) -> None:
    with running_container() as container:
        load_active(container, crashies, "one")
        first = the_spare(container)
        load_active(container, crashies, "two")
        assert plugin_entry(container, "two")["pid"] == first
        assert ping(container, "two") == first
        second = the_spare(container)
        assert second != first
        os.kill(plugin_entry(container, "one")["pid"], signal.SIGKILL)  # a restart takes it

        def restarted() -> bool:
            pid = plugin_entry(container, "one")["pid"]
            return pid == second and plugin_entry(container, "one")["state"] == "active"

        wait_until(restarted, what="the restart to take the spare")
        assert ping(container, "one") == second
        assert the_spare(container) not in (first, second)


def test_spawn_method_plugins_alone_never_make_a_spare() -> None:
    with running_container(start_method="spawn") as container:
        for plugin_id in ("design", "audit"):  # after a second spawn too
            load_active(container, GOOD, plugin_id)
            assert not idle_children(container)


def test_a_killed_spare_is_replaced_at_the_next_spawn_not_before(crashies: Path) -> None:
    with running_container() as container:
        load_active(container, crashies, "one")
        dead = the_spare(container)
        os.kill(dead, signal.SIGKILL)
        forkserver = psutil.Process(forkserver_of(container))
        wait_until(lambda: dead not in {c.pid for c in forkserver.children()},
                   what="the dead spare to be reaped")
        assert not idle_children(container)  # no new one until a spawn needs it: no loop
        load_active(container, crashies, "two")
        assert ping(container, "two") not in (0, dead)
        assert the_spare(container) != dead


def fork_server_queued(forkserver: int) -> int:
    """Bytes waiting in the fork server's control socket (read with ``ss``)."""
    command = psutil.Process(forkserver).cmdline()
    fd = command[command.index("--control-fd") + 1]
    inode = os.readlink(f"/proc/{forkserver}/fd/{fd}").removeprefix("socket:[").rstrip("]")
    for line in subprocess.run(["ss", "-x", "-a", "-n"], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] == inode:
            return int(fields[2])
    return 0


def test_a_spare_that_died_unseen_gives_way_to_a_fork_of_its_own(crashies: Path) -> None:
    """The spare dies while the fork server is busy (stopped here), so the Spawn reaches it
    before the news: handing the spare its bootstrap fails (EPIPE), and the worker is forked
    directly."""
    with running_container() as container:
        load_active(container, crashies, "one")
        dead = the_spare(container)
        forkserver = forkserver_of(container)
        errors: list[BaseException] = []

        def load_two() -> None:
            try:
                load_active(container, crashies, "two")
            except BaseException as exc:
                errors.append(exc)

        os.kill(forkserver, signal.SIGSTOP)
        loader = threading.Thread(target=load_two)
        try:
            os.kill(dead, signal.SIGKILL)
            loader.start()
            wait_until(lambda: fork_server_queued(forkserver), what="the Spawn to be queued")
        finally:
            os.kill(forkserver, signal.SIGCONT)
            if loader.ident is not None:
                loader.join(timeout=20)
        assert not errors and not loader.is_alive()
        assert ping(container, "two") not in (0, dead)
        assert the_spare(container) != dead


def test_the_orphan_sweep_kills_orphans_not_the_spare(crashies: Path) -> None:
    with running_container(restart={"type": "temporary"}) as container:
        load_active(container, ESCAPIST, "escapist")
        idle = the_spare(container)
        orphan = container.send_message("escapist", Command(command_name="escapist:orphan"))
        assert isinstance(orphan, int)
        _SEEN_PIDS.add(orphan)
        os.kill(plugin_entry(container, "escapist")["pid"], signal.SIGKILL)  # reap, then sweep
        all_gone({orphan}, timeout=3.0, what="the orphan of a killed worker")
        assert pid_alive(idle)
        assert idle_children(container) == {idle}
        load_active(container, crashies, "one")
        assert ping(container, "one") == idle


def test_no_spare_outlives_its_supervisor_or_its_fork_server(crashies: Path) -> None:
    with running_container() as container:
        load_active(container, crashies, "one")
        idle = the_spare(container)
    all_gone({idle}, what="the spare after shutdown()")
    with running_container() as container:
        load_active(container, crashies, "one")
        idle = the_spare(container)
        os.kill(forkserver_of(container), signal.SIGKILL)
        all_gone({idle}, timeout=2.0, what="the spare of a SIGKILLed fork server")


def intruder_from_the_spare(container: PluginContainer, tmp_path: Path) -> dict[str, Any]:
    """Start a plugin (which leaves a spare), then the intruder, which must be that spare;
    the intruder's status entry."""
    load_active(container, tmp_path / "plugins", "one")
    idle = the_spare(container)
    load_active(container, tmp_path / "plugins", "intruder")
    entry = plugin_entry(container, "intruder")
    assert entry["pid"] == idle
    return entry


@pytest.mark.skipif(ABI < 1, reason=NO_LANDLOCK)
def test_a_worker_from_the_spare_is_confined(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret")
    copy_plugin(INTRUDER, tmp_path / "plugins", "intruder")
    copy_plugin(CRASHY, tmp_path / "plugins", "one")
    with running_container(data_dir=str(tmp_path / "data")) as container:
        entry = intruder_from_the_spare(container, tmp_path)
        assert entry["hardening"]["landlock"] is True
        assert entry["hardening"]["own_network"] is True
        assert entry["hardening"]["no_new_privs"] is True
        read = container.send_message("intruder", Command(
            command_name="intruder:read", options={"path": str(secret)}))
        assert read["ok"] is False and read["errno"] == "EACCES"
        assert container.send_message("intruder", Command(
            command_name="intruder:whoami"))["result"]["cwd"].endswith("/plugins/intruder")


def test_a_worker_from_the_spare_without_landlock(tmp_path: Path) -> None:
    copy_plugin(INTRUDER, tmp_path / "plugins", "intruder")
    copy_plugin(CRASHY, tmp_path / "plugins", "one")
    with running_container(data_dir=str(tmp_path / "data"),
                           hardening={"landlock": False}) as container:
        entry = intruder_from_the_spare(container, tmp_path)
        assert entry["hardening"]["landlock"] is False
        assert entry["hardening"]["reasons"]["landlock"] == "off in the config (hardening.landlock)"


# -- the channel, between two ends in this process ----------------------------------------------

@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process to stand for the spare (``Spare.become`` kills it when it fails)."""
    process = subprocess.Popen(["sleep", "30"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def handle(pid: int) -> Iterator[tuple[spare.Spare, socket.socket]]:
    ours, its = spare.channel()
    stdout, stdout_w = os.pipe()
    stderr, stderr_w = os.pipe()
    os.close(stdout_w)
    os.close(stderr_w)
    try:
        yield spare.Spare(pid, ours, stdout, stderr), its
    finally:
        its.close()


def test_the_bootstrap_and_its_ruleset_cross_the_channel(
        sleeper: subprocess.Popen[bytes]) -> None:
    kinds: list[Ruleset | str | None] = [None, "Landlock is disabled on this kernel"]
    if ABI:
        kinds.append(Ruleset(network=False))
    for rules in kinds:
        with handle(sleeper.pid) as (idle, its):
            started = idle.become(BOOT.pack(), rules)
            assert started is not None and started[0] == sleeper.pid
            for fd in started[1:]:
                os.close(fd)
            assert idle.channel.fileno() != -1  # the fork server's end: now the return channel
            idle.channel.close()  # what was sent stays readable
            handed = spare.receive(its)
            assert handed is not None
            boot, received = handed
            assert boot == BOOT
            if isinstance(rules, Ruleset):
                assert isinstance(received, Ruleset)
                assert os.readlink(f"/proc/self/fd/{received.fileno()}") == \
                    "anon_inode:[landlock-ruleset]"
                assert (received.abi, received.handled_fs) == (rules.abi, rules.handled_fs)
                received.close()
                rules.close()
            else:
                assert received == rules
    assert sleeper.poll() is None


def test_a_spare_whose_channel_closed_exits_without_a_bootstrap(
        sleeper: subprocess.Popen[bytes]) -> None:
    with handle(sleeper.pid) as (idle, its):
        idle.close()
        assert spare.receive(its) is None


def test_a_dead_spare_is_discarded(sleeper: subprocess.Popen[bytes]) -> None:
    with handle(sleeper.pid) as (idle, its):
        its.close()  # as when the spare died
        assert idle.become(dataclasses.replace(BOOT, plugin_id="q").pack(), None) is None
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        assert idle.channel.fileno() == -1
        for fd in (idle.stdout, idle.stderr):
            with pytest.raises(OSError):
                os.fstat(fd)
