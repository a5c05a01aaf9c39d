"""The supervisor's end of the fork server: asks it for workers, hears of their ends.

The fork server (``spec_kit_worker.forkserver``) is the parent of every worker and the
only process that reaps them; this link is a private SOCK_SEQPACKET socketpair (one record
per packet, nothing another process can connect to) plus a pidfd on the fork server
itself, both waited on in the supervisor's poll. A spawn is answered within milliseconds,
so it is asked and awaited in place, bounded by ``start_timeout``; exits that arrive
meanwhile are kept for the loop.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections import deque

from . import wire
from .bootstrap import MAX_BOOTSTRAP_BYTES, Bootstrap
from .errors import ProtocolError
from .protocol import Exited, Record, Signal, Spawn, Spawned

_BUFFER_BYTES = 2 * (MAX_BOOTSTRAP_BYTES + wire.HEADER_MARGIN)  # a whole Spawn fits a packet


class ForkServerLink:
    """One fork server process and the socket to it; ``start`` again after it died."""

    def __init__(self, spawn_timeout: float) -> None:
        self.spawn_timeout = spawn_timeout
        self._popen: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self.pidfd = -1  # -1 while the fork server is not running
        self._tags = itertools.count(1)
        self._exits: deque[Exited] = deque()

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
        for end in (ours, theirs):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                end.setsockopt(socket.SOL_SOCKET, option, _BUFFER_BYTES)
        try:
            self._popen = subprocess.Popen(
                [sys.executable, "-m", "spec_kit_worker.forkserver",
                 "--control-fd", str(theirs.fileno()), "--supervisor-pid", str(os.getpid())],
                pass_fds=(theirs.fileno(),), start_new_session=True, stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._socket = ours
        self.pidfd = os.pidfd_open(self._popen.pid)

    def spawn(self, bootstrap: Bootstrap, method: str) -> tuple[int, int, int]:
        """A new worker (``method``: fork or spawn): its pid and the read ends of its stdout
        and stderr pipes, which the caller owns; OSError if it cannot start."""
        tag = next(self._tags)
        self._send(Spawn(tag, method, bootstrap.pack()))
        deadline = time.monotonic() + self.spawn_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.control_fd, self.pidfd], [], [], remaining)
            if self.pidfd in ready:
                raise OSError("the fork server exited")
            answer = self._sort(tag)
            if answer is None:
                continue
            spawned, fds = answer
            if not spawned.pid:
                raise OSError(f"the fork server could not start it: {spawned.error}")
            if len(fds) == 2:
                return spawned.pid, fds[0], fds[1]
            _close_all(fds)
            self.signal(spawned.pid, signal.SIGKILL)
            raise OSError("the fork server sent no output pipes")
        raise OSError(f"the fork server did not answer within {self.spawn_timeout:g}s")

    def signal(self, pid: int, signum: int) -> None:
        """Ask for ``signum`` to the worker ``pid``'s tree (ignored once it has ended)."""
        with contextlib.suppress(OSError):
            self._send(Signal(pid, signum))

    def exits(self) -> list[Exited]:
        """The worker ends reported since the last call."""
        self._sort(None)
        ended = list(self._exits)
        self._exits.clear()
        return ended

    @property
    def has_exits(self) -> bool:
        """Ends already read (during a spawn) and not yet taken by ``exits``."""
        return bool(self._exits)

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
            popen.wait(timeout)
        except subprocess.TimeoutExpired:  # its workers die with it (parent-death signal)
            popen.kill()
            popen.wait()

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        with contextlib.suppress(OSError):
            os.close(self.pidfd)
        self._popen, self._socket, self.pidfd = None, None, -1
        self._exits.clear()

    def _send(self, record: Record) -> None:
        if self._socket is None:
            raise OSError("the fork server is not running")
        self._socket.send(wire.encode(record))

    def _sort(self, tag: int | None) -> tuple[Spawned, list[int]] | None:
        """Read what is waiting: ends are kept for ``exits``; the Spawned answering ``tag``
        is returned with its fds; any other Spawned answers a spawn given up on, so its
        worker is killed and its pipes closed (its end is then ignored: nobody's)."""
        answer = None
        for record, fds in self._receive():
            if isinstance(record, Spawned) and tag is not None and record.tag == tag:
                answer = (record, fds)
                continue
            _close_all(fds)
            if isinstance(record, Exited):
                self._exits.append(record)
            elif isinstance(record, Spawned) and record.pid:
                self.signal(record.pid, signal.SIGKILL)
        return answer

    def _receive(self) -> list[tuple[Record, list[int]]]:
        """What the fork server sent, each record with the file descriptors it carried."""
        records: list[tuple[Record, list[int]]] = []
        while self._socket is not None:
            try:
                frame, fds, _, _ = socket.recv_fds(self._socket, _BUFFER_BYTES, 2)
            except BlockingIOError:
                break
            if not frame:
                _close_all(fds)
                break  # closed: its pidfd tells the loop
            try:
                records.append((wire.decode(frame), fds))
            except ProtocolError:  # from our own code; dropped if unreadable
                _close_all(fds)
        return records


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
