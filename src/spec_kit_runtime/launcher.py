"""Starting a private supervisor process and waiting until it listens.

The supervisor reports readiness through an inherited pipe: no polling for files, and a
supervisor that dies at start-up is noticed at once (the pipe closes).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from .errors import SupervisorUnavailable

READY = b"ready"


def launch_supervisor(runtime_dir: Path, config_file: Path | None = None,
                      timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """Start ``spec-kit-runtime run`` tied to this process; return once it listens."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "spec_kit_runtime", "run",
               "--runtime-dir", str(runtime_dir), "--parent-pid", str(os.getpid()),
               "--ready-fd", str(write_fd)]
    if config_file is not None:
        command += ["--config", str(config_file)]
    try:
        process = subprocess.Popen(command, pass_fds=(write_fd,), stdin=subprocess.DEVNULL)
    finally:
        os.close(write_fd)
    try:
        answer = _read_with_timeout(read_fd, timeout)
    finally:
        os.close(read_fd)
    if answer != READY:
        if answer is None:
            process.kill()
        code = process.wait()
        raise SupervisorUnavailable(
            f"the supervisor did not start (exit code {code})" if answer is not None
            else f"the supervisor did not get ready within {timeout:g}s"
        )
    return process


def _read_with_timeout(fd: int, timeout: float) -> bytes | None:
    end = time.monotonic() + timeout
    data = b""
    while (remaining := end - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 64)
            if not chunk:
                return data
            data += chunk
            if data == READY:
                return data
    return None


def signal_ready(fd: int) -> None:
    """Called by the supervisor once its sockets are bound."""
    os.write(fd, READY)
    os.close(fd)
