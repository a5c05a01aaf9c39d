"""Make the worker die with its supervisor, even when the supervisor is SIGKILLed."""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(supervisor_pid: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies, then check it has not already.

    PR_SET_PDEATHSIG fires when the parent *thread* exits; the supervisor spawns workers
    from its loop thread, which lives as long as the supervisor.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != supervisor_pid:
        os._exit(70)  # the supervisor died between fork and prctl
