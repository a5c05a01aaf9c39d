"""Waiting for a child process to exit, woken by the kernel rather than by polling.

``Popen.wait(timeout)`` polls: it looks, then sleeps 1, 2, 4 … up to 50 ms between looks,
so a child that takes 35 ms to exit is seen after 63 ms. A pidfd becomes readable the
moment the child exits.
"""

from __future__ import annotations

import os
import select
import subprocess
from typing import Any


def wait_exit(process: subprocess.Popen[Any], timeout: float) -> int:
    """``process.wait(timeout)``, returning as soon as the child exits: its exit code, or
    ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the child left running)."""
    if process.returncode is not None:
        return process.returncode
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:  # reaped meanwhile by another wait on it
        return process.wait(timeout)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(pidfd)
    return process.wait()
