"""The last call a worker began, where its parent can still read it after a SIGKILL.

Why: when a worker dies, the supervisor still has the calls it sent it that were not
answered. The worker runs calls one at a time, in the order they came
(``policy.worker_calls``; a nested call, served while a handler waits, also begins in that
order), so the calls it had not begun yet never reached a handler: they can wait for its
replacement, like a call sent during the restart (``supervisor.ready_waits``). The calls it
had begun fail with its death, since a handler may have had effects. Only the worker knows
which calls it began, and one record per call to say so would cost the routing path a
message. So the worker writes each routed call's id into a page of shared memory before
its handler runs: a memfd that the fork server makes for each worker and no other process
maps. When the fork server reaps the worker it reads the page and tells the supervisor in
``Exited``. The store costs the call about a tenth of a microsecond.

The ids are the supervisor's, given in the order it sends calls to this worker. So every
call up to the one read was begun, and every call after it was not. A worker killed between
taking a call off its socket and writing its id leaves the call counted as not begun, which
is true: no handler ran. The page starts at 0: nothing begun. It is mapped without keeping
an fd (``libc.map_shared``), so the plugin finds no fd of it.

Untrusted: the plugin's code runs in that process and can write any value to the page.
The worst it can do is to have calls to itself that it had begun sent again to its
replacement, or calls it had not begun fail. Both stay with that plugin.
"""

from __future__ import annotations

import ctypes
import os
import sys

from spec_kit_worker.libc import map_shared

SIZE = 8  # one unsigned 64-bit call id, in this machine's byte order
ALL_BEGUN = 2**64 - 1  # what a worker that cannot map its page writes there
_NAME = "spec-kit-call-progress"  # as /proc/PID/fd shows it


def create() -> int:
    """A new worker's page (the fork server's fd, close-on-exec; it reads 0). Raises
    OSError with nothing left open."""
    fd = os.memfd_create(_NAME, os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, SIZE)
    except OSError:
        os.close(fd)
        raise
    return fd


def read(fd: int) -> int:
    """The id of the last call the page's worker began (0: none), once it is dead."""
    return int.from_bytes(os.pread(fd, SIZE, 0), sys.byteorder)


class CallProgress:
    """The worker's side: writes the id of each call it begins."""

    def __init__(self, fd: int | None) -> None:
        """Maps the page ``fd`` and closes it (None: no page, e.g. a host in a test). A page
        that cannot be mapped is set to ``ALL_BEGUN``, so that no call is sent twice."""
        self._last: ctypes.c_uint64 | None = None
        if fd is None:
            return
        try:
            self._last = ctypes.c_uint64.from_address(map_shared(fd, SIZE))
        except OSError:
            os.pwrite(fd, ALL_BEGUN.to_bytes(SIZE, sys.byteorder), 0)
        finally:
            os.close(fd)

    def began(self, cid: int) -> None:
        """The worker begins call ``cid`` (> 0): from now its death fails it."""
        if self._last is not None:
            self._last.value = cid
