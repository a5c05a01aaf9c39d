"""The supervisor's end of the fork server: asks it for workers, hears of their ends.

The fork server (``spec_kit_worker.birth.forkserver``) is the parent of every worker and the
only process that reaps them; this link is a private SOCK_SEQPACKET socketpair (one record
per packet, nothing another process can connect to) plus a pidfd on the fork server
itself, both waited on in the supervisor's poll. Spawns are asked without waiting: the
fork server forks while the supervisor goes on (with the Hellos of the workers already
started, at a cold start), and its answers come in ``news`` with the workers' ends.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spec_kit_runtime.linux.child_wait import wait_exit
from spec_kit_runtime.logs.timeline import mark

if TYPE_CHECKING:
    from spec_kit_runtime.wire.bootstrap import Bootstrap
    from spec_kit_runtime.wire.protocol import Exited, Record

# The protocol and the codec (wire, bootstrap, errors, and the contracts under them) are
# imported on first use, not with this module: `run` starts the fork server first, so
# that the fork server's imports overlap the supervisor's (see cli/run.py).


@functools.cache
def _buffer_bytes() -> int:
    """The link's socket buffers: a whole Spawn fits a packet."""
    from spec_kit_runtime.wire.bootstrap import MAX_BOOTSTRAP_BYTES
    from spec_kit_runtime.wire.codec import HEADER_MARGIN

    return 2 * (MAX_BOOTSTRAP_BYTES + HEADER_MARGIN)


@dataclass(frozen=True, slots=True)
class SpawnAnswer:
    """The fork server's answer to spawn ``tag``: the worker's pid and the read ends of its
    stdout and stderr pipes, or pid 0 and why it could not start it."""

    tag: int
    pid: int
    stdout: int = -1
    stderr: int = -1
    error: str = ""


class ForkServerLink:
    """One fork server process and the socket to it; ``start`` again after it died."""

    def __init__(self, spawn_timeout: float) -> None:
        self.spawn_timeout = spawn_timeout
        self._popen: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self.pidfd = -1  # -1 while the fork server is not running
        self._tags = itertools.count(1)
        self._asked: set[int] = set()  # tags of spawns not answered nor given up on
        self._news: deque[Exited | SpawnAnswer] = deque()

    @property
    def running(self) -> bool:
        return self._popen is not None

    @property
    def pid(self) -> int:
        assert self._popen is not None, "the fork server is not running"
        return self._popen.pid

    @property
    def control_fd(self) -> int:
        """The socket's fd for a poller; -1 while the fork server is not running."""
        return -1 if self._socket is None else self._socket.fileno()

    def start(self) -> None:
        """Start the fork server; it imports the worker host while the caller goes on."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._popen = subprocess.Popen(
                [sys.executable, "-m", "spec_kit_worker.birth.forkserver",
                 "--control-fd", str(theirs.fileno()), "--supervisor-pid", str(os.getpid())],
                pass_fds=(theirs.fileno(),), start_new_session=True, stdin=subprocess.DEVNULL,
            )
            # Sized once it is on its way (their sizes need the codec): nothing is sent
            # either way before this returns.
            for end in (ours, theirs):
                for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                    end.setsockopt(socket.SOL_SOCKET, option, _buffer_bytes())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._socket = ours
        self.pidfd = os.pidfd_open(self._popen.pid)

    def request_spawn(self, bootstrap: Bootstrap, method: str) -> int:
        """Ask for a new worker (``method``: fork or spawn) and return at once: the answer
        comes from ``news`` with the tag returned here. OSError if it cannot be asked."""
        from spec_kit_runtime.wire.protocol import Spawn

        tag = next(self._tags)
        self._send(Spawn(tag, method, bootstrap.pack()))
        mark("spawn-asked")
        self._asked.add(tag)
        return tag

    def abandon(self, tag: int) -> None:
        """Give up on spawn ``tag``: a worker it started, or starts later, is killed."""
        self._asked.discard(tag)
        for told in [t for t in self._news if isinstance(t, SpawnAnswer) and t.tag == tag]:
            self._news.remove(told)
            if told.pid:
                self.signal(told.pid, signal.SIGKILL)
                _close_all([told.stdout, told.stderr])

    def signal(self, pid: int, signum: int) -> None:
        """Ask for ``signum`` to the worker ``pid``'s tree (ignored once it has ended)."""
        from spec_kit_runtime.wire.protocol import Signal

        with contextlib.suppress(OSError):
            self._send(Signal(pid, signum))

    def news(self) -> list[Exited | SpawnAnswer]:
        """What the fork server said since the last call, in order: worker ends, and the
        answers to spawns still asked for (the caller owns their pipes)."""
        self._read()
        told = list(self._news)
        self._news.clear()
        return told

    def reap(self) -> int:
        """After the fork server died (its pidfd is readable): its exit code; not running."""
        assert self._popen is not None
        code = self._popen.wait()
        self._close()
        return code

    def stop(self, timeout: float) -> None:
        """Close the link: the fork server kills every worker's tree, reaps them, exits."""
        if self._popen is None:
            return
        popen = self._popen
        self._close()
        try:
            wait_exit(popen, timeout)
        except subprocess.TimeoutExpired:  # its workers die with it (parent-death signal)
            popen.kill()
            popen.wait()

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        with contextlib.suppress(OSError):
            os.close(self.pidfd)
        self._popen, self._socket, self.pidfd = None, None, -1
        self._asked.clear()
        for told in self._news:
            if isinstance(told, SpawnAnswer) and told.pid:
                _close_all([told.stdout, told.stderr])
        self._news.clear()

    def _send(self, record: Record) -> None:
        """Send one record. A full socket (hundreds of spawns asked at once) waits for the
        fork server to read, reading what it sends meanwhile: it may be waiting for us."""
        from spec_kit_runtime.wire import codec

        if self._socket is None:
            raise OSError("the fork server is not running")
        frame = codec.encode(record)
        deadline = time.monotonic() + self.spawn_timeout
        while True:
            try:
                self._socket.send(frame)
                return
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OSError(f"the fork server read nothing for {self.spawn_timeout:g}s")
            readable, _, _ = select.select([self.control_fd, self.pidfd], [self.control_fd],
                                           [], remaining)
            if self.pidfd in readable:
                raise OSError("the fork server exited")
            if readable:
                self._read()

    def _read(self) -> None:
        """Keep what the fork server sent: ends, and answers to spawns still asked for. A
        worker started for a spawn given up on, or sent without its two pipes, is killed
        (its end is then nobody's, and ignored). The kills are sent after the whole batch
        is kept: a send may wait and read again, and what it reads comes after."""
        from spec_kit_runtime.wire.protocol import Exited, Spawned

        doomed: list[int] = []
        for record, fds in self._receive():
            if isinstance(record, Spawned):
                asked = record.tag in self._asked
                self._asked.discard(record.tag)
                if asked and record.pid and len(fds) == 2:
                    self._news.append(SpawnAnswer(record.tag, record.pid, fds[0], fds[1]))
                    continue
                if record.pid:
                    doomed.append(record.pid)
                if asked:
                    self._news.append(SpawnAnswer(record.tag, 0, error=record.error
                                                  or "it sent no output pipes"))
            elif isinstance(record, Exited):
                mark("exit-heard")
                self._news.append(record)
            _close_all(fds)
        for pid in doomed:
            self.signal(pid, signal.SIGKILL)

    @property
    def has_news(self) -> bool:
        """Records already read (by a send that waited) and not yet taken by ``news``."""
        return bool(self._news)

    def _receive(self) -> list[tuple[Record, list[int]]]:
        """What the fork server sent, each record with the file descriptors it carried."""
        from spec_kit_runtime.errors import ProtocolError
        from spec_kit_runtime.wire import codec

        records: list[tuple[Record, list[int]]] = []
        while self._socket is not None:
            try:
                frame, fds, _, _ = socket.recv_fds(self._socket, _buffer_bytes(), 2)
            except BlockingIOError:
                break
            if not frame:
                _close_all(fds)
                break  # closed: its pidfd tells the loop
            try:
                records.append((codec.decode(frame), fds))
            except ProtocolError:  # from our own code; dropped if unreadable
                _close_all(fds)
        return records

def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
