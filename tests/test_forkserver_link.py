"""The supervisor's end of the fork server link against a scripted peer on a real socketpair:
nothing it reads is lost, answers to spawns given up on kill their workers, and a full
socket is waited on, boundedly."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import zmq

from conftest import _SEEN_PIDS, GOOD, wait_until
from spec_kit_runtime.supervisor.forkserver_link import ForkServerLink, SpawnAnswer
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_runtime.wire.protocol import Exited, Record, Signal, Spawn, Spawned

BOOT = Bootstrap(endpoint="ipc:///x", plugin_id="p", secret=b"s" * 32, parent_pid=1,
                 plugin_file="/p.py", entry_point="P", sandbox=True, scope=(),
                 max_message_bytes=1 << 20, request_timeout=1.0, memory_mb=None,
                 cpu_seconds=None, open_files=None, cgroups=(), plugin_dir="/",
                 data_dir="/d", landlock=True, network=False, own_network=True, uid=None,
                 gid=None)
T = TypeVar("T")


@pytest.fixture
def peer() -> Iterator[tuple[ForkServerLink, socket.socket]]:
    """A link whose fork server is the test: the other end of its socketpair."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    link = ForkServerLink(spawn_timeout=2.0)
    link._socket = ours  # the link's own start() would spawn a real fork server
    link.pidfd = os.pidfd_open(os.getpid())  # never readable while the test runs
    yield link, theirs
    link._close()
    theirs.close()


def say(sock: socket.socket, record: Record, with_pipes: bool = False) -> list[int]:
    fds = [end for _ in range(2) for end in os.pipe()][::2] if with_pipes else []
    socket.send_fds(sock, [codec.encode(record)], fds)
    return fds


def fill(link: ForkServerLink) -> int:
    """Fill the link's socket towards the (not reading) fork server; how many records."""
    frame = codec.encode(Signal(1, 0))
    sent = 0
    while True:
        try:
            link._socket.send(frame)  # type: ignore[union-attr]
        except BlockingIOError:
            return sent
        sent += 1


def drain(sock: socket.socket) -> None:
    """Read (and drop) what the link sent, for a while: the fork server catching up."""
    sock.settimeout(0.2)
    try:
        while sock.recv(1 << 21):
            pass
    except OSError:
        pass


def heard(sock: socket.socket) -> list[Record]:
    sock.settimeout(0.2)
    records = []
    try:
        while True:
            records.append(codec.decode(sock.recv(1 << 21)))
    except TimeoutError:
        return records


def test_news_keeps_ends_and_answers_in_order(peer: tuple[ForkServerLink, socket.socket]
                                              ) -> None:
    link, fork_server = peer
    assert link.request_spawn(BOOT, "fork") == 1
    say(fork_server, Exited(111, -9, 0))
    say(fork_server, Spawned(1, 4242, ""), with_pipes=True)
    say(fork_server, Exited(222, 0, 0))
    told = link.news()
    assert [type(t) for t in told] == [Exited, SpawnAnswer, Exited]
    answer = told[1]
    assert isinstance(answer, SpawnAnswer) and (answer.tag, answer.pid) == (1, 4242)
    os.close(answer.stdout)
    os.close(answer.stderr)
    assert [(t.pid, t.returncode) for t in told if isinstance(t, Exited)] == [(111, -9), (222, 0)]
    assert [type(r) for r in heard(fork_server)] == [Spawn]
    assert link.news() == []


def test_an_answer_nobody_asked_for_kills_its_worker(
        peer: tuple[ForkServerLink, socket.socket]) -> None:
    link, fork_server = peer
    say(fork_server, Spawned(99, 5151, ""), with_pipes=True)
    say(fork_server, Exited(5151, -9, 3))
    assert link.news() == [Exited(5151, -9, 3)]
    assert heard(fork_server) == [Signal(5151, signal.SIGKILL)]


def test_an_abandoned_spawn_kills_its_worker_before_or_after_its_answer(
        peer: tuple[ForkServerLink, socket.socket]) -> None:
    link, fork_server = peer
    first, second = link.request_spawn(BOOT, "fork"), link.request_spawn(BOOT, "fork")
    link.abandon(first)
    say(fork_server, Spawned(first, 6001, ""), with_pipes=True)
    say(fork_server, Spawned(second, 6002, ""), with_pipes=True)
    link._read()  # the second answer is read, not yet taken ...
    link.abandon(second)  # ... when it is given up on
    assert link.news() == []
    assert heard(fork_server)[2:] == [Signal(6001, signal.SIGKILL), Signal(6002, signal.SIGKILL)]


def test_a_failed_spawn_is_an_answer_without_a_pid(peer: tuple[ForkServerLink, socket.socket]
                                                   ) -> None:
    link, fork_server = peer
    tag = link.request_spawn(BOOT, "fork")
    say(fork_server, Exited(333, 3, -1))
    say(fork_server, Spawned(tag, 0, "fork: Resource temporarily unavailable"))
    assert link.news() == [Exited(333, 3, -1),
                           SpawnAnswer(tag, 0, error="fork: Resource temporarily unavailable")]


def test_a_worker_sent_without_its_pipes_is_killed(peer: tuple[ForkServerLink, socket.socket]
                                                    ) -> None:
    link, fork_server = peer
    tag = link.request_spawn(BOOT, "fork")
    say(fork_server, Spawned(tag, 7007, ""))
    assert link.news() == [SpawnAnswer(tag, 0, error="it sent no output pipes")]
    assert heard(fork_server)[1:] == [Signal(7007, signal.SIGKILL)]


def test_a_full_socket_waits_for_the_fork_server_then_gives_up(
        peer: tuple[ForkServerLink, socket.socket]) -> None:
    link, fork_server = peer
    link.spawn_timeout = 0.3
    big = dataclasses.replace(BOOT, scope=("x" * 60_000,))  # a few fill the socket's buffer
    reader = threading.Timer(0.1, lambda: heard(fork_server))  # reads for a while, late
    reader.start()
    try:
        for _ in range(200):  # more than the buffer holds: each send waits for the reader
            link.request_spawn(big, "fork")
    except OSError as exc:
        pytest.fail(f"a spawn failed while the fork server was reading: {exc}")
    finally:
        reader.join()
    started = time.monotonic()
    with pytest.raises(OSError, match=r"read nothing for 0\.3s"):
        for _ in range(200):  # nobody reads now
            link.request_spawn(big, "fork")
    assert time.monotonic() - started < 5


def test_an_exit_is_never_told_before_its_spawn_answer(
        peer: tuple[ForkServerLink, socket.socket]) -> None:
    """_read kills the worker of an answer nobody asked for (signal() -> _send), which on a
    full socket waits and reads again: what that inner read takes (a worker's Exited) must
    not come before the rest of the outer batch (that worker's Spawned)."""
    link, fork_server = peer
    tag = link.request_spawn(BOOT, "fork")
    say(fork_server, Spawned(99, 5151, ""), with_pipes=True)  # abandoned: its worker is killed
    say(fork_server, Spawned(tag, 4242, ""), with_pipes=True)
    fill(link)

    def fork_server_goes_on() -> None:
        say(fork_server, Exited(4242, 70, 0))  # the new worker died at once
        threading.Timer(0.2, lambda: drain(fork_server)).start()  # then it reads again

    threading.Timer(0.2, fork_server_goes_on).start()
    told = link.news()
    for answer in told:
        if isinstance(answer, SpawnAnswer):
            os.close(answer.stdout)
            os.close(answer.stderr)
    assert [type(t) for t in told] == [SpawnAnswer, Exited], told


def test_what_a_waiting_send_read_is_signalled_to_the_loop(
        peer: tuple[ForkServerLink, socket.socket]) -> None:
    """The supervisor calls news() when control_fd is readable; what a _send that waited
    read off the socket is kept, and ``has_news`` says so (no fd would)."""
    link, fork_server = peer
    tag = link.request_spawn(BOOT, "fork")
    say(fork_server, Spawned(tag, 4242, ""), with_pipes=True)
    fill(link)
    threading.Timer(0.2, lambda: drain(fork_server)).start()
    link.signal(777, signal.SIGKILL)  # waits for room, reading the answer meanwhile
    readable, _, _ = select.select([link.control_fd], [], [], 0.2)
    flagged = link.has_news
    for answer in link.news():
        if isinstance(answer, SpawnAnswer):
            os.close(answer.stdout)
            os.close(answer.stderr)
    assert readable or flagged, "an answer is kept but neither its fd nor the link says so"


def design_boot(tmp_path: Path, link: ForkServerLink) -> Bootstrap:
    """A bootstrap for a real worker of the design plugin, connecting to
    ``tmp_path/workers.sock``, for ``link``'s fork server."""
    return dataclasses.replace(
        BOOT, endpoint=f"ipc://{tmp_path}/workers.sock", parent_pid=link.pid,
        plugin_file=str(GOOD / "design" / "design_plugin.py"), entry_point="DesignPlugin",
        plugin_dir=str(GOOD / "design"), data_dir=str(tmp_path), sandbox=False,
        landlock=False, own_network=False, network=True, plugin_id="design")


def answered(link: ForkServerLink, kind: type[T], pid: int | None = None) -> T:
    """The next ``kind`` the fork server tells (of worker ``pid``, if given)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        select.select([link.control_fd], [], [], 0.1)
        for told in link.news():
            if isinstance(told, kind) and (pid is None or getattr(told, "pid", None) == pid):
                return told
    raise AssertionError(f"no {kind.__name__} from the fork server")


def pages(pid: int, where: str = "fd") -> int:
    """How many call progress pages process ``pid`` holds: as fds, or mapped ("maps")."""
    if where == "maps":
        return Path(f"/proc/{pid}/maps").read_text().count("spec-kit-call-progress")
    links = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
    return sum("spec-kit-call-progress" in link for link in links)


def test_the_fork_server_holds_a_page_per_live_worker_and_reports_it(tmp_path: Path) -> None:
    """A failed spawn leaves no page; a worker's page is the fork server's fd and the
    worker's mapping, never the worker's fd; its end reads it (a worker killed before any
    call: 0, nothing begun) and closes it."""
    context = zmq.Context()
    door = context.socket(zmq.ROUTER)
    door.setsockopt(zmq.LINGER, 0)
    door.bind(f"ipc://{tmp_path}/workers.sock")
    link = ForkServerLink(spawn_timeout=5.0)
    link.start()
    boot = design_boot(tmp_path, link)
    try:
        for _ in range(3):
            link.request_spawn(boot, "no-such-method")
            assert answered(link, SpawnAnswer).pid == 0
        # closed once the answer is sent (its finally)
        wait_until(lambda: pages(link.pid) == 0, what="the failed spawns' pages closed")
        workers = []
        for method in ("fork", "spawn", "fork"):  # a direct fork, a fresh one, the spare
            link.request_spawn(boot, method)
            answer = answered(link, SpawnAnswer)
            assert answer.pid, answer
            _SEEN_PIDS.add(answer.pid)
            os.close(answer.stdout)
            os.close(answer.stderr)
            workers.append(answer.pid)
            time.sleep(0.05)  # the next spare is forked 20 ms after a fork
        for pid in workers:
            wait_until(lambda pid=pid: pages(pid, "maps") == 1, what="the worker's mapping")
            assert pages(pid) == 0
        assert pages(link.pid) == 3
        for left, pid in enumerate(workers, 1):
            link.signal(pid, signal.SIGKILL)
            ended = answered(link, Exited, pid)
            assert (ended.began, ended.began_call()) == (0, 0)
            assert pages(link.pid) == 3 - left
    finally:
        link.stop(timeout=5)
        door.close()
        context.term()


def test_a_page_not_known_is_none() -> None:
    assert Exited(1, -9, Exited.NOT_KNOWN).began_call() is None
    assert Exited(1, -9, 0).began_call() == 0


def test_a_worker_killed_as_soon_as_it_is_answered_dies(tmp_path: Path) -> None:
    """A SIGKILL sent right on the Spawned answer (an answer given up on, started() for an
    operation already failed) reaches the worker even before its setsid(), when it has no
    process group of its own yet."""
    context = zmq.Context()
    door = context.socket(zmq.ROUTER)  # where the workers connect (and say Hello, unheard)
    door.setsockopt(zmq.LINGER, 0)
    door.bind(f"ipc://{tmp_path}/workers.sock")
    link = ForkServerLink(spawn_timeout=5.0)
    link.start()
    boot = design_boot(tmp_path, link)
    missed: list[int] = []
    codes: list[int] = []
    try:
        for _ in range(40):
            link.request_spawn(boot, "fork")
            answer = None
            while answer is None:
                select.select([link.control_fd], [], [], 5)
                answer = next((t for t in link.news() if isinstance(t, SpawnAnswer)), None)
            assert answer.pid, answer
            _SEEN_PIDS.add(answer.pid)
            link.signal(answer.pid, signal.SIGKILL)  # at once, as started() or _read do
            os.close(answer.stdout)
            os.close(answer.stderr)
            ended = False
            deadline = time.monotonic() + 2
            while not ended and time.monotonic() < deadline:
                select.select([link.control_fd], [], [], 0.1)
                for t in link.news():
                    if isinstance(t, Exited) and t.pid == answer.pid:
                        ended = True
                        codes.append(t.returncode)
            if not ended:
                missed.append(answer.pid)
    finally:
        link.stop(timeout=5)
        door.close()
        context.term()
    assert codes, "no worker was seen to end"
    assert not missed, f"workers {missed} outlived the SIGKILL sent on their answer"
