"""Each worker's stdout and stderr, read from pipes into the supervisor's log.

The fork server gives every worker two pipes and hands their read ends to the supervisor
(SCM_RIGHTS with ``Spawned``). Lines are logged tagged with the plugin's id (stdout at
INFO, stderr at WARNING), within the plugin's ``OutputBudget``; the rest is read and
dropped, and counted in its status. The pipes are always drained, so a plugin printing
in a tight loop never blocks on a full pipe, and what is kept of a line is bounded, so
nothing it prints can grow the supervisor's memory.

The pipes live in an epoll set of their own, which the supervisor's loop watches as one
fd: two pipes per worker in the loop's own poll set made every turn of the loop cost
O(plugins), with 200 plugins a third of the routed latency.
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable
from dataclasses import dataclass, field

from spec_kit_runtime.policy.output_budget import OutputBudget

log = logging.getLogger("spec_kit_runtime.plugin")
MAX_LINE_BYTES = 4096  # longer lines are cut here (the rest counts as dropped)
LINE_OVERHEAD = 64  # what a log record costs beyond its text: an empty line is not free
MAX_LINES_PER_READ = 256  # more in one read are dropped: the loop has other work
_READ_BYTES = 65536
_DROP_NOTICE_EVERY = 10.0  # seconds between warnings that a plugin's output is dropped


@dataclass
class _Stream:
    plugin_id: str
    name: str  # stdout or stderr
    level: int
    budget: OutputBudget
    pending: bytearray = field(default_factory=bytearray)
    skipping: bool = False  # the rest of a line already cut at MAX_LINE_BYTES: dropped


class OutputCapture:
    """The read ends of every worker's output pipes, readable as one fd (``fileno``)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._epoll = select.epoll()
        self._streams: dict[int, _Stream] = {}
        self._noticed: dict[str, float] = {}  # plugin → when its dropping was last logged

    def fileno(self) -> int:
        """Readable when any pipe is: the loop polls this instead of every pipe."""
        return self._epoll.fileno()

    def add(self, plugin_id: str, budget: OutputBudget, stdout: int, stderr: int) -> None:
        """Start reading a new worker's pipes (non-blocking; closed at their end of file)."""
        for fd, name, level in ((stdout, "stdout", logging.INFO),
                                (stderr, "stderr", logging.WARNING)):
            os.set_blocking(fd, False)
            self._streams[fd] = _Stream(plugin_id, name, level, budget)
            self._epoll.register(fd, select.EPOLLIN)

    def ready(self) -> None:
        """Read every pipe that has something (or has reached its end)."""
        for fd, _ in self._epoll.poll(0):
            if fd in self._streams:
                self._read(fd)

    def _read(self, fd: int) -> None:
        """Read what is there; log what fits the budget; close the pipe at end of file."""
        stream = self._streams[fd]
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._finish(fd, stream)
            return
        if stream.budget.exhausted(self._now()):  # a flood: count it, at C speed
            stream.budget.drop(len(data), data.count(b"\n"))
            self._notice_drops(stream)
            return
        if stream.skipping:  # however the pipe splits it, a long line is logged once
            end = data.find(b"\n")
            stream.budget.drop(len(data) if end < 0 else end, 0)
            if end < 0:
                return
            stream.skipping, data = False, data[end + 1:]
        *lines, rest = (bytes(stream.pending) + data).split(b"\n")
        stream.pending = bytearray(rest[:MAX_LINE_BYTES])
        if len(rest) > MAX_LINE_BYTES:  # no newline in sight: log what is kept as a line
            lines.append(bytes(stream.pending))
            stream.budget.drop(len(rest) - MAX_LINE_BYTES, 0)
            stream.pending.clear()
            stream.skipping = True
        for line in lines[:MAX_LINES_PER_READ]:
            self._line(stream, line)
        if len(lines) > MAX_LINES_PER_READ:
            extra = lines[MAX_LINES_PER_READ:]
            stream.budget.drop(sum(map(len, extra)) + len(extra), len(extra))
            self._notice_drops(stream)

    def close(self) -> None:
        """Log what is left in every pipe and close them all (the supervisor is stopping)."""
        for fd in list(self._streams):
            for _ in range(16):  # bounded: a writer may still be there
                if fd not in self._streams or not _has_data(fd):
                    break
                self._read(fd)
            if fd in self._streams:
                self._finish(fd, self._streams[fd])
        self._epoll.close()

    def _line(self, stream: _Stream, line: bytes) -> None:
        kept = line[:MAX_LINE_BYTES]
        stream.budget.drop(len(line) - len(kept), 0)
        if stream.budget.take(len(kept) + 1, self._now(), LINE_OVERHEAD):
            text = kept.decode("utf-8", "replace").rstrip("\r")
            log.log(stream.level, "[%s] %s", stream.plugin_id, text,
                    extra={"plugin": stream.plugin_id, "stream": stream.name})
        else:
            self._notice_drops(stream)

    def _notice_drops(self, stream: _Stream) -> None:
        now = self._now()
        if now - self._noticed.get(stream.plugin_id, -_DROP_NOTICE_EVERY) >= _DROP_NOTICE_EVERY:
            log.warning("[%s] output over its limit: %d bytes dropped so far (see status)",
                        stream.plugin_id, stream.budget.dropped_bytes,
                        extra={"plugin": stream.plugin_id, "stream": stream.name})
            self._noticed[stream.plugin_id] = now

    def _finish(self, fd: int, stream: _Stream) -> None:
        if stream.pending:
            self._line(stream, bytes(stream.pending))
        del self._streams[fd]
        self._epoll.unregister(fd)
        os.close(fd)


def _has_data(fd: int) -> bool:
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)
