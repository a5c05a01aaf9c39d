"""Starting a private supervisor process and waiting until it listens.

The supervisor reports readiness through an inherited pipe: no polling for files, and a
supervisor that dies at start-up is noticed at once (the pipe closes). Its stdout and
stderr are its log file, never the caller's (``private_logs``): so a start that fails says
why in that file, and the error raised here quotes its end.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from spec_kit_runtime.errors import SupervisorUnavailable

from .private_logs import tail

READY = b"ready"


def launch_supervisor(runtime_dir: Path, config_file: Path | None = None,
                      timeout: float = 20.0, *, private_dir: Path | None = None,
                      log_file: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``spec-kit-runtime run`` tied to this process; return once it listens.

    ``private_dir``: the supervisor's own folder, which it removes as it exits (see
    ``private_dir``); ``log_file``: where its stdout and stderr go (None: nowhere)."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "spec_kit_runtime", "run",
               "--runtime-dir", str(runtime_dir), "--parent-pid", str(os.getpid()),
               "--ready-fd", str(write_fd)]
    if config_file is not None:
        command += ["--config", str(config_file)]
    if private_dir is not None:
        command += ["--private-dir", str(private_dir)]
    if log_file is not None:
        command += ["--log-file", str(log_file)]
    try:
        process = _start(command, write_fd, log_file)
        answer = _read_with_timeout(read_fd, timeout)
    finally:
        os.close(read_fd)
    if answer != READY:
        if answer is None:
            process.kill()
        code = process.wait()
        raise SupervisorUnavailable(
            (f"the supervisor did not start (exit code {code})" if answer is not None
             else f"the supervisor did not get ready within {timeout:g}s")
            + _what_it_said(log_file)
        )
    return process


def _start(command: list[str], ready_fd: int, log_file: Path | None
           ) -> subprocess.Popen[bytes]:
    """Start ``command`` with ``ready_fd`` (closed here), its output into ``log_file``."""
    output = subprocess.DEVNULL
    try:
        if log_file is not None:
            output = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        return subprocess.Popen(command, pass_fds=(ready_fd,), stdin=subprocess.DEVNULL,
                                stdout=output, stderr=output)
    finally:
        os.close(ready_fd)
        if output != subprocess.DEVNULL:
            os.close(output)


def _what_it_said(log_file: Path | None) -> str:
    if log_file is None:
        return ""
    said = tail(log_file)
    return f"; its log {log_file} ends with:\n{said}" if said else f"; its log: {log_file}"


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
