"""Spawning, signalling and reaping one worker process (the OS edge of a plugin slot).

Each worker gets its own session (process group), so a stop reaches the plugin's own
children too, and a pidfd, which the supervisor's poller waits on: the kernel tells us
of a death the moment it happens, no polling interval.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys

from .bootstrap import Bootstrap
from .exits import ExitReason

log = logging.getLogger(__name__)


class WorkerProcess:
    """A running (or just ended) worker process."""

    def __init__(self, popen: subprocess.Popen[bytes], pidfd: int) -> None:
        self._popen = popen
        self.pidfd = pidfd
        self.expected_exit = False
        self.identity: bytes | None = None  # its ZeroMQ routing id, once it said hello
        self.missed_heartbeats = 0
        self._cause: tuple[str, str] | None = None

    @property
    def pid(self) -> int:
        return self._popen.pid

    @classmethod
    def spawn(cls, bootstrap: Bootstrap) -> WorkerProcess:
        """Start ``python -m spec_kit_worker`` and hand it ``bootstrap`` through a pipe."""
        read_fd, write_fd = os.pipe()
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", "spec_kit_worker", "--bootstrap-fd", str(read_fd)],
                pass_fds=(read_fd,), start_new_session=True, stdin=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        pidfd = os.pidfd_open(popen.pid)
        try:
            bootstrap.write_to(write_fd)
        except BrokenPipeError:
            log.warning("worker %s for %s exited before reading its bootstrap",
                        popen.pid, bootstrap.plugin_id)
        return cls(popen, pidfd)

    def signal_tree(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the worker's whole process group (its children too)."""
        if self._popen.returncode is not None:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            self._popen.send_signal(sig)

    def kill_for(self, cause: str, kind: str) -> None:
        """SIGKILL the whole tree, remembering why (``kind``: unresponsive, limit)."""
        if self._cause is None:
            self._cause = (cause, kind)
        self.signal_tree(signal.SIGKILL)

    def reap(self) -> ExitReason | None:
        """The exit reason once the process has ended (reaping it), else None."""
        if self._popen.returncode is None:
            try:  # ended? WNOWAIT: the zombie keeps its pid and group from being reused...
                ended = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                ended = None
            if ended is None and self._popen.poll() is None:
                return None
            # ...so the plugin's leftover children, in its group, can be killed safely.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        code = self._popen.wait()
        if self._cause is None and code == -signal.SIGXCPU:  # the kernel enforced RLIMIT_CPU
            self._cause = ("cpu_seconds limit exceeded", "limit")
        cause, kind = self._cause or (None, None)
        return ExitReason(code, self.expected_exit, cause, kind)

    def wait(self, timeout: float) -> ExitReason | None:
        """Block up to ``timeout`` seconds for the exit (used only when shutting down)."""
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.reap()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.pidfd)
