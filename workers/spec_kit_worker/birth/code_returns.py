"""The fork server's ends of its workers' return channels, on which a worker's first load
sends its plugin's compiled code (``loop.code_cache``).

Each is watched in the fork server's poll loop and read once, without blocking; then it is
closed and forgotten: when the worker sent, closed its end (its plugin is about to run), or
was reaped. What arrives is kept under the plugin id and file of the bootstrap the fork
server gave that worker, never under a name the message could choose; garbage is dropped.
The fork server never unmarshals it.
"""

from __future__ import annotations

import contextlib
import select
import socket
from dataclasses import dataclass

from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.loop import code_cache


@dataclass(frozen=True)
class _Return:
    pid: int
    channel: socket.socket
    name: code_cache.Name


class CodeReturns:
    """The return channels still open, by fd, registered in the fork server's ``poller``."""

    def __init__(self, poller: select.poll) -> None:
        self._poller = poller
        self._open: dict[int, _Return] = {}

    def watch(self, pid: int, channel: socket.socket, boot: Bootstrap) -> None:
        """Wait for the code of worker ``pid``'s plugin (``boot``) on ``channel``, now ours;
        a sandboxed plugin's worker sends none: its channel is closed at once."""
        if boot.sandbox:
            channel.close()
            return
        self._open[channel.fileno()] = _Return(pid, channel,
                                               code_cache.name_of(boot.plugin_id, boot.plugin_file))
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
            message = entry.channel.recv(code_cache.MAX_MESSAGE_BYTES + 1, socket.MSG_DONTWAIT)
        except BlockingIOError:
            if waiting:
                return  # nothing after all: keep watching
            message = b""
        except OSError:
            message = b""
        if message:
            code_cache.store(entry.name, message)  # a malformed or too large one is not kept
        fd = entry.channel.fileno()
        del self._open[fd]
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(fd)
        entry.channel.close()
