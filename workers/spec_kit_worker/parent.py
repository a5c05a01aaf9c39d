"""Make a process die with its parent, even when the parent is SIGKILLed."""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _prctl(option: int, value: int) -> None:
    if _LIBC is not None and _LIBC.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def die_with_parent(parent_pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask the kernel for ``sig`` when the parent dies, then check it has not already.

    PR_SET_PDEATHSIG fires when the parent *thread* exits: workers are forked by the fork
    server's only thread, which lives as long as the fork server.
    """
    _prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent_pid:
        os._exit(70)  # the parent died before prctl took effect


def adopt_orphans() -> None:
    """Become the child subreaper: orphans below this process are reparented to it, not init."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
