"""The fork server's ends of its workers' return channels (a worker that was the spare has
one: its channel, kept), on which a worker that found no code for its plugin sends the code
it compiled: one packet, ``code_cache.OFFER`` with one fd, a sealed
memfd (``loop.code_cache``).

Each is watched in the fork server's poll loop and read once, without blocking; then it is
closed and forgotten: when the worker sent, closed its end (its plugin is about to run), or
was reaped. A memfd that arrives is handed to the ``CodeStore`` under the plugin id of the
bootstrap the fork server gave that worker (and its file), never under a name the message
could choose;
anything else (another message, no fd or more than one, a truncated packet) is dropped
with the fds that came with it. The fork server never reads a memfd.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from dataclasses import dataclass

from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.loop import code_cache

from .code_store import CodeStore
from .fd_passing import receive_fds

_RECEIVE_BYTES = len(code_cache.OFFER) + 1  # more: a longer packet, truncated, is refused


@dataclass(frozen=True)
class _Return:
    pid: int
    channel: socket.socket
    plugin_id: str
    plugin_file: str


class CodeReturns:
    """The return channels still open, by fd, registered in the fork server's ``poller``;
    what comes on them goes to ``store``."""

    def __init__(self, poller: select.poll, store: CodeStore) -> None:
        self._poller = poller
        self._store = store
        self._open: dict[int, _Return] = {}

    def watch(self, pid: int, channel: socket.socket, boot: Bootstrap) -> None:
        """Wait for the code of worker ``pid``'s plugin (``boot``) on ``channel``, now ours;
        a sandboxed plugin's worker sends none: its channel is closed at once."""
        if boot.sandbox:
            channel.close()
            return
        self._open[channel.fileno()] = _Return(pid, channel, boot.plugin_id, boot.plugin_file)
        self._poller.register(channel.fileno(), select.POLLIN)

    def __contains__(self, fd: int) -> bool:
        return fd in self._open

    def fds(self) -> tuple[int, ...]:
        """Their fds, which no other child of the fork server may keep."""
        return tuple(self._open)

    def ready(self, fd: int) -> None:
        """``poll`` found ``fd`` readable: take what came (the code, or the end of it)."""
        self._take(self._open[fd], waiting=True)

    def ended(self, pid: int) -> None:
        """Worker ``pid`` was reaped: take what it sent, if anything, and close its channel."""
        for entry in [entry for entry in self._open.values() if entry.pid == pid]:
            self._take(entry, waiting=False)

    def _take(self, entry: _Return, waiting: bool) -> None:
        try:
            message, fds, flags = receive_fds(entry.channel, _RECEIVE_BYTES, 1,
                                              socket.MSG_DONTWAIT)
        except BlockingIOError:
            if waiting:
                return  # nothing after all: keep watching
            message, fds, flags = b"", [], 0
        except OSError:
            message, fds, flags = b"", [], 0
        if message or fds:  # the worker compiled: the plugin's older code is of no more use
            whole = not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC)
            if whole and message == code_cache.OFFER and len(fds) == 1:
                # checked there, closed if bad
                self._store.keep((entry.plugin_id, entry.plugin_file), fds[0])
            else:
                self._store.drop(entry.plugin_id)
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        fd = entry.channel.fileno()
        del self._open[fd]
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(fd)
        entry.channel.close()
