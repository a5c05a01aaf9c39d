"""The fork server's spare worker: forked ahead of time, idle and holding nothing of the fork
server's, it becomes the next forked worker (a restart's too) with the same confinement; a
dead spare costs no spawn; it is never swept, and never outlives the fork server."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import traceback
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
from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.linux.cgroups import Cgroups
from spec_kit_runtime.linux.process_tree import OWNER_VARIABLE
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.birth import spare
from spec_kit_worker.confinement.landlock import Ruleset
from spec_kit_worker.libc import LIBC
from spec_kit_worker.loop import call_progress, code_memfd

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
        # 0-2, its channel, and the eventfd of ZeroMQ's context (made ahead: no thread yet)
        assert set(fds) - {0, 1, 2} and len(fds) == 5, fds
        assert sorted(link.split(":")[0] for fd, link in fds.items() if fd > 2) == [
            "anon_inode", "socket"], fds
        assert "anon_inode:[eventfd]" in fds.values()
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


# -- prepared ahead for a kind of worker --------------------------------------------------------

def own_net() -> str:
    return os.readlink("/proc/self/ns/net")


def net_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def attempt(container: PluginContainer, plugin_id: str, what: str,
            **options: Any) -> dict[str, Any]:
    """The intruder copy ``plugin_id``'s outcome of ``what`` (see the intruder plugin)."""
    outcome: dict[str, Any] = container.send_message(
        plugin_id, Command(command_name=f"{plugin_id}:{what}", options=options))
    return outcome


def denied(outcome: dict[str, Any]) -> bool:
    return outcome["ok"] is False and outcome["errno"] == "EACCES"


def no_ruleset_held(pid: int) -> bool:
    """Whether ``pid`` holds no Landlock ruleset fd (its own is closed once enforced)."""
    fds = os.listdir(f"/proc/{pid}/fd")
    return all("landlock-ruleset" not in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds
               if os.path.exists(f"/proc/{pid}/fd/{fd}"))


@pytest.mark.skipif(ABI < 1, reason=NO_LANDLOCK)
def test_a_spare_makes_its_network_namespace_ahead_and_each_worker_has_a_ruleset_of_its_own(
        tmp_path: Path) -> None:
    """Two workers in a row from spares, each its own namespace (made before any plugin was
    handed over) and its own ruleset: its folders and its own /proc entry, not the other's."""
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret")
    for plugin_id in ("one", "two", "three"):
        copy_plugin(INTRUDER, tmp_path / "plugins", plugin_id)
    with running_container(data_dir=str(tmp_path / "data")) as container:
        load_active(container, tmp_path / "plugins", "one")
        workers = {}
        for plugin_id in ("two", "three"):
            idle = the_spare(container)
            assert net_of(idle) != own_net()  # made ahead, before any plugin
            load_active(container, tmp_path / "plugins", plugin_id)
            workers[plugin_id] = entry = plugin_entry(container, plugin_id)
            assert entry["pid"] == idle
            assert entry["hardening"]["own_network"] is True
            assert entry["hardening"]["landlock"] is True
            assert net_of(idle) != own_net()
        assert net_of(workers["two"]["pid"]) != net_of(workers["three"]["pid"])
        for plugin_id in workers:
            (tmp_path / "data" / "plugins" / plugin_id / "x").write_text(plugin_id)
        for plugin_id, other in (("two", "three"), ("three", "two")):
            pid, other_pid = workers[plugin_id]["pid"], workers[other]["pid"]
            data = tmp_path / "data" / "plugins" / plugin_id
            assert no_ruleset_held(pid)
            assert denied(attempt(container, plugin_id, "read", path=str(secret)))
            assert denied(attempt(container, plugin_id, "read",
                                  path=str(tmp_path / "data" / "plugins" / other / "x")))
            assert attempt(container, plugin_id, "write", path="notes.txt", text=plugin_id)["ok"]
            assert (data / "notes.txt").read_text() == plugin_id
            assert attempt(container, plugin_id, "read", path=f"/proc/{pid}/status")["ok"]
            assert denied(attempt(container, plugin_id, "read", path=f"/proc/{other_pid}/status"))
            assert denied(attempt(container, plugin_id, "read", path="/etc/hosts"))  # no network
        next_spare = the_spare(container)
        assert denied(attempt(container, "two", "read", path=f"/proc/{next_spare}/status"))


@pytest.mark.skipif(ABI < 1, reason=NO_LANDLOCK)
def test_a_spawn_of_another_kind_gets_its_own_confinement_not_the_spares(
        tmp_path: Path) -> None:
    """closed (a namespace: made ahead by the spare after it) → open (no namespace, by the
    config): that spare cannot serve it, and is killed → net (network asked: no namespace,
    TCP and the resolver's files allowed): the spare after open serves it, with a ruleset
    built whole → closed2: the spare after net serves it, its namespace made as it starts,
    its ruleset without net's rights. And a spawn-method worker keeps no spare's ruleset."""
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret")
    for plugin_id in ("closed", "open", "closed2"):
        copy_plugin(INTRUDER, tmp_path / "plugins", plugin_id)
    copy_plugin(INTRUDER, tmp_path / "plugins", "net", network=True)
    copy_plugin(INTRUDER, tmp_path / "plugins", "fresh", start_method="spawn")
    plugins = {"open": {"hardening": {"network_namespace": False}}}
    with running_container(data_dir=str(tmp_path / "data"), plugins=plugins) as container:
        folder = tmp_path / "plugins"

        def start(plugin_id: str) -> dict[str, Any]:
            load_active(container, folder, plugin_id)
            entry = plugin_entry(container, plugin_id)
            assert entry["hardening"]["landlock"] is True
            pid = entry["pid"]
            assert attempt(container, plugin_id, "read", path=f"/proc/{pid}/status")["ok"]
            assert denied(attempt(container, plugin_id, "read", path=str(secret)))
            return entry

        start("closed")
        prepared = the_spare(container)
        assert net_of(prepared) != own_net()
        opened = start("open")
        assert opened["pid"] != prepared
        all_gone({prepared}, timeout=3.0, what="the spare of another kind")
        assert opened["hardening"]["own_network"] is False
        assert net_of(opened["pid"]) == own_net()
        assert denied(attempt(container, "open", "read", path="/etc/hosts"))

        unprepared = the_spare(container)
        assert net_of(unprepared) == own_net()
        load_active(container, folder, "fresh")  # a child of the fork server's, meanwhile
        assert no_ruleset_held(plugin_entry(container, "fresh")["pid"])
        assert the_spare(container) == unprepared
        net = start("net")
        assert net["pid"] == unprepared
        assert net["hardening"]["own_network"] is False
        assert net_of(net["pid"]) == own_net()
        assert attempt(container, "net", "read", path="/etc/hosts")["ok"]

        unprepared = the_spare(container)
        assert net_of(unprepared) == own_net()
        closed2 = start("closed2")
        assert closed2["pid"] == unprepared
        assert closed2["hardening"]["own_network"] is True
        assert net_of(closed2["pid"]) != own_net()
        assert denied(attempt(container, "closed2", "read", path="/etc/hosts"))
        for entry in (opened, net, closed2):
            assert no_ruleset_held(entry["pid"])


def cgroups_unusable() -> str:
    probe = Cgroups(True)
    probe.close()
    return probe.reason


def test_with_cgroups_the_worker_makes_its_namespace_after_its_join(crashies: Path) -> None:
    """The namespace's kernel memory is charged to the plugin's memory cgroup: the spare
    does not make it ahead, the worker from it does, once in its groups."""
    if why := cgroups_unusable():
        pytest.skip(f"cgroups unusable here: {why}")
    with running_container(cgroups=True) as container:
        load_active(container, crashies, "one")
        idle = the_spare(container)
        assert net_of(idle) == own_net()
        load_active(container, crashies, "two")
        entry = plugin_entry(container, "two")
        assert entry["pid"] == idle
        assert entry["hardening"]["own_network"] is True
        assert net_of(idle) != own_net()
        assert "/spec-kit-runtime-" in Path(f"/proc/{idle}/cgroup").read_text()


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
            boot, received, code, progress = handed
            assert boot == BOOT and code is None and progress is None
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


def test_the_plugins_code_and_progress_page_cross_the_channel_with_the_bootstrap(
        sleeper: subprocess.Popen[bytes]) -> None:
    kinds: list[Ruleset | str | None] = [None]
    if ABI:
        kinds.append(Ruleset(network=False))
    for rules in kinds:
        code = code_memfd.write(b"d" * 32, b"code")
        page = call_progress.create()
        with handle(sleeper.pid) as (idle, its):
            started = idle.become(BOOT.pack(), rules, code, page)
            assert started is not None
            for fd in started[1:]:
                os.close(fd)
            idle.channel.close()
            assert os.fstat(code)  # still the fork server's
            handed = spare.receive(its)
            assert handed is not None and handed.boot == BOOT
            assert handed.code is not None and handed.code != code
            assert code_memfd.read(handed.code, b"d" * 32) == b"code"
            assert fcntl.fcntl(handed.code, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            os.close(handed.code)
            assert handed.progress is not None and handed.progress != page
            call_progress.CallProgress(handed.progress).began(77)  # maps it, closes the fd
            assert call_progress.read(page) == 77  # the fork server's fd: the same page
            if isinstance(rules, Ruleset):
                assert isinstance(handed.rules, Ruleset)
                handed.rules.close()
                rules.close()
            else:
                assert handed.rules is None
        os.close(code)
        os.close(page)


@pytest.mark.parametrize(("roles", "landlock", "fds"), [
    (["code"], None, 2),  # more fds than said
    (["code", "code"], None, 2),
    (["ruleset"], None, 1),  # a ruleset's fd without its ABI
    ([], 3, 0),  # an ABI without a ruleset's fd
    (["other"], None, 1),
    ("code", None, 1),
    (["code"], None, 3),  # more fds than a spare takes: truncated
])
def test_a_spare_refuses_a_handover_that_does_not_say_which_fd_is_which(
        roles: Any, landlock: Any, fds: int) -> None:
    ours, its = spare.channel()
    before = set(os.listdir("/proc/self/fd"))
    sent = [code_memfd.write(b"d" * 32, b"code") for _ in range(fds)]
    with ours, its:
        socket.send_fds(ours, [codec.pack_value([BOOT.pack(), landlock, roles])], sent)
        for fd in sent:
            os.close(fd)
        with pytest.raises(ProtocolError):
            spare.receive(its)
    assert set(os.listdir("/proc/self/fd")) <= before  # what came was closed


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


def test_no_network_namespace_ahead_for_a_worker_with_cgroups() -> None:
    """With cgroups the worker makes its namespace after its join (see ``spare``)."""
    assert spare.kind_of(BOOT) == spare.Kind(own_network=True, landlock=True, network=False)
    grouped = dataclasses.replace(BOOT, cgroups=("/sys/fs/cgroup/memory/x",))
    assert spare.kind_of(grouped).own_network is False
    no_landlock = dataclasses.replace(BOOT, landlock=False, network=True)
    assert spare.kind_of(no_landlock) == spare.Kind(True, False, False)


def received_ruleset(its: socket.socket) -> Ruleset | str | None:
    handed = spare.receive(its)
    assert handed is not None
    return handed[1]


@pytest.mark.skipif(ABI < 1, reason=NO_LANDLOCK)
def test_a_spare_takes_a_spawn_of_its_kind_or_one_without_its_namespace(
        sleeper: subprocess.Popen[bytes], tmp_path: Path) -> None:
    boot = dataclasses.replace(BOOT, plugin_dir=str(tmp_path), data_dir=str(tmp_path))
    other = dataclasses.replace(boot, network=True, own_network=False)
    for kind, asked in ((spare.kind_of(boot), boot), (spare.kind_of(other), boot)):
        with handle(sleeper.pid) as (idle, its):
            idle.kind = kind
            idle.prepare()
            assert isinstance(idle.rules, Ruleset)
            prepared = idle.rules.fileno()
            assert prepared in idle.fds()  # closed in the fork server's other children
            started = idle.take(asked, asked.pack())
            assert started is not None and started[0] == sleeper.pid
            for fd in started[1:]:
                os.close(fd)
            assert idle.rules is None  # ours: closed
            assert idle.channel.fileno() != -1  # kept: the worker's way back for its code
            idle.channel.close()
            with pytest.raises(OSError):
                os.fstat(prepared)
            received = received_ruleset(its)
            assert isinstance(received, Ruleset)
            received.close()
    assert sleeper.poll() is None


@pytest.mark.skipif(not ABI, reason="no Landlock on this kernel")
@pytest.mark.parametrize("replaced", [False, True])
def test_a_spare_whose_files_were_replaced_meanwhile_gets_a_ruleset_built_whole(
        sleeper: subprocess.Popen[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        replaced: bool) -> None:
    """A rule holds the file it was given: a spare idle while /etc/resolv.conf (say) was
    replaced must not hand its worker a rule for the old one."""
    boot = dataclasses.replace(BOOT, plugin_dir=str(tmp_path), data_dir=str(tmp_path))
    built_whole: list[Bootstrap] = []
    real_ruleset = spare.ruleset

    def counting(asked: Bootstrap) -> Ruleset | str | None:
        built_whole.append(asked)
        return real_ruleset(asked)

    monkeypatch.setattr(spare, "ruleset", counting)
    with handle(sleeper.pid) as (idle, its):
        idle.kind = spare.kind_of(boot)
        idle.prepare()
        if replaced:  # one file of the ruleset's is another now
            monkeypatch.setattr(spare, "common_identity",
                                lambda network: ((1, 1), *idle.identity[1:]))
        started = idle.take(boot, boot.pack())
        assert started is not None
        for fd in started[1:]:
            os.close(fd)
        idle.channel.close()
        received = received_ruleset(its)
        assert isinstance(received, Ruleset)
        received.close()
    assert built_whole == ([boot] if replaced else [])


def test_a_spare_with_its_namespace_made_is_discarded_by_a_spawn_of_another_kind(
        sleeper: subprocess.Popen[bytes]) -> None:
    with handle(sleeper.pid) as (idle, its):
        idle.kind = spare.kind_of(BOOT)
        idle.prepare()
        other = dataclasses.replace(BOOT, own_network=False)
        assert idle.take(other, other.pack()) is None
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        assert idle.rules is None and idle.channel.fileno() == -1
        assert spare.receive(its) is None  # nothing was handed over


CAP_SYS_ADMIN = 21


def without_sys_admin() -> None:
    """Drop CAP_SYS_ADMIN from this process's effective set: the kernel then refuses root a
    network namespace, as in a container."""
    header = ctypes.create_string_buffer(struct.pack("=Ii", 0x20080522, 0))
    data = ctypes.create_string_buffer(24)
    assert LIBC.capget(header, data) == 0
    words = list(struct.unpack("=6I", data.raw))
    words[0] &= ~(1 << CAP_SYS_ADMIN)  # the low word's effective set
    assert LIBC.capset(header, ctypes.create_string_buffer(struct.pack("=6I", *words), 24)) == 0


@pytest.mark.skipif(os.getuid() != 0, reason="the refusal made here is root's")
def test_a_spare_refused_its_namespace_leaves_its_worker_to_ask_again(tmp_path: Path) -> None:
    """A namespace the kernel refused the idle spare is not frozen into its worker, which
    asks again at its start; nothing else of the worker's start changes (``run_worker``
    stands in)."""
    boot = dataclasses.replace(BOOT, plugin_dir=str(tmp_path), data_dir=str(tmp_path))
    ours, its = spare.channel()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours.close()
            os.close(read_fd)
            without_sys_admin()

            def run_worker(boot: Bootstrap, rules: Any, network: Any, proc_allowed: bool,
                           back: socket.socket, cached: int | None, context: Any,
                           progress: int | None) -> int:
                told = {"plugin": boot.plugin_id, "network": network,
                        "proc_allowed": proc_allowed, "ruleset": isinstance(rules, Ruleset),
                        "moved": os.readlink("/proc/self/ns/net") != own_net()}
                os.write(write_fd, json.dumps(told).encode())
                return 0

            spare.run_worker = run_worker  # type: ignore[assignment]  # this child's only
            code = spare.serve(its, os.getppid(), network_ahead=True)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    its.close()
    os.close(write_fd)
    stdout, stdout_w = os.pipe()
    stderr, stderr_w = os.pipe()
    os.close(stdout_w)
    os.close(stderr_w)
    try:
        idle = spare.Spare(pid, ours, stdout, stderr, spare.kind_of(boot))
        idle.prepare()
        started = idle.take(boot, boot.pack())
        assert started is not None
        with os.fdopen(read_fd, "rb") as pipe:
            told = json.loads(pipe.read() or b"null")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # not reaped yet: still ours
        status = os.waitpid(pid, 0)[1]
        for fd in (stdout, stderr):
            with contextlib.suppress(OSError):
                os.close(fd)
    assert status == 0, status
    # Refused to the idle spare, the namespace is asked for again by its worker (None): by
    # then it may be had (a limit of namespaces no longer reached, say).
    assert told == {"plugin": "p", "network": None, "proc_allowed": True,
                    "ruleset": ABI > 0, "moved": False}
