"""The supervisor's end of the fork server link against a scripted peer on a real socketpair:
nothing it reads is lost, and answers to spawns given up on kill their workers."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator

import pytest

from spec_kit_runtime import wire
from spec_kit_runtime.bootstrap import Bootstrap
from spec_kit_runtime.forkserver_link import ForkServerLink
from spec_kit_runtime.protocol import Exited, Record, Signal, Spawn, Spawned

BOOT = Bootstrap(endpoint="ipc:///x", plugin_id="p", secret=b"s" * 32, parent_pid=1,
                 plugin_file="/p.py", entry_point="P", sandbox=True, scope=(),
                 max_message_bytes=1 << 20, request_timeout=1.0, memory_mb=None,
                 cpu_seconds=None, open_files=None, cgroups=(), plugin_dir="/",
                 data_dir="/d", landlock=True, network=False, own_network=True, uid=None,
                 gid=None)


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
    socket.send_fds(sock, [wire.encode(record)], fds)
    return fds


def heard(sock: socket.socket) -> list[Record]:
    sock.settimeout(0.2)
    records = []
    try:
        while True:
            records.append(wire.decode(sock.recv(1 << 21)))
    except TimeoutError:
        return records


def test_an_end_read_with_the_spawn_answer_is_kept(peer: tuple[ForkServerLink, socket.socket]
                                                   ) -> None:
    link, fork_server = peer
    say(fork_server, Exited(111, -9))
    say(fork_server, Spawned(1, 4242, ""), with_pipes=True)  # the first spawn's tag
    say(fork_server, Exited(222, 0))  # read in the same batch as the answer
    pid, stdout, stderr = link.spawn(BOOT, "fork")
    assert pid == 4242
    os.close(stdout)
    os.close(stderr)
    assert link.has_exits
    assert [(e.pid, e.returncode) for e in link.exits()] == [(111, -9), (222, 0)]
    assert [type(r) for r in heard(fork_server)] == [Spawn]


def test_a_late_answer_kills_its_worker(peer: tuple[ForkServerLink, socket.socket]) -> None:
    link, fork_server = peer
    say(fork_server, Spawned(99, 5151, ""), with_pipes=True)  # for a spawn given up on
    say(fork_server, Exited(5151, -9))
    assert [e.pid for e in link.exits()] == [5151]
    assert heard(fork_server) == [Signal(5151, signal.SIGKILL)]


def test_a_failed_spawn_keeps_what_it_read(peer: tuple[ForkServerLink, socket.socket]) -> None:
    link, fork_server = peer
    say(fork_server, Exited(333, 3))
    say(fork_server, Spawned(1, 0, "fork: Resource temporarily unavailable"))
    with pytest.raises(OSError, match="could not start it: fork: Resource"):
        link.spawn(BOOT, "fork")
    assert [e.pid for e in link.exits()] == [333]
