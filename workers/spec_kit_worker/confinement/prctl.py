"""``prctl(2)`` for the worker's process attributes (Linux; a no-op elsewhere)."""

import ctypes

from spec_kit_worker.libc import LIBC, LINUX

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38


def prctl(option: int, value: int) -> None:
    """Set one attribute of this process; OSError if the kernel refuses."""
    if LINUX and LIBC.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
