"""The supervisor's handle on one worker process: its pid, why it is being killed, how it ended.

Workers are children of the fork server (``forkserver_link``), which forks, signals and
reaps them; this handle asks it for signals and turns the exit it reports into an
``ExitReason``. Signals go to the worker's whole tree, so a stop reaches the plugin's own
children too.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from spec_kit_runtime.policy.confinement import WorkerConfinement
from spec_kit_runtime.policy.exits import ExitKind, ExitReason


class WorkerProcess:
    """A running (or just ended) worker process."""

    def __init__(self, pid: int, send_signal: Callable[[int, int], None],
                 confinement: WorkerConfinement, cgroups: tuple[str, ...] = ()) -> None:
        self.pid = pid
        self.confinement = confinement  # what it was asked to apply to itself
        self.cgroups = cgroups  # its own groups (see cgroups.py), removed after it ends
        self.hardening: dict[str, Any] = {}  # the layers it runs under (see hardening.py)
        self._send_signal = send_signal
        self.expected_exit = False
        self.identity: bytes | None = None  # its ZeroMQ routing id, once it said hello
        self.missed_heartbeats = 0
        self._cause: tuple[str, ExitKind | None] | None = None
        self._ended = False

    def signal_tree(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the worker, its process group and all its descendants."""
        if not self._ended:
            self._send_signal(self.pid, sig)

    @property
    def kill_cause(self) -> str | None:
        """Why the supervisor is killing it, once it has begun to (None: it is not)."""
        return self._cause[0] if self._cause else None

    def kill_for(self, cause: str, kind: ExitKind | None) -> None:
        """SIGKILL the whole tree, remembering why (``kind`` None: no kind, a crash)."""
        if self._cause is None:
            self._cause = (cause, kind)
        self.signal_tree(signal.SIGKILL)

    def ended(self, returncode: int, cause: str | None = None,
              kind: ExitKind | None = None, began: int | None = None) -> ExitReason:
        """How it ended, given its exit code (negative: the signal that killed it),
        ``cause`` (of ``kind``) when the supervisor knows one it did not give it itself, and
        the last call it ``began`` (None: not known)."""
        self._ended = True
        if self._cause is None and cause is not None:
            self._cause = (cause, kind)
        if self._cause is None and returncode == -signal.SIGXCPU:  # the kernel's RLIMIT_CPU
            self._cause = ("cpu_seconds limit exceeded", ExitKind.LIMIT)
        cause, kind = self._cause or (None, None)
        return ExitReason(returncode, self.expected_exit, cause, kind, began)
