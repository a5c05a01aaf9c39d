"""Waiting for a child's exit on its pidfd: the exit code as soon as it ends, the same
TimeoutExpired as ``Popen.wait``, and an already waited child."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from spec_kit_runtime.linux.child_wait import wait_exit


def test_returns_the_exit_code_once_the_child_ends() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert wait_exit(child, 30.0) == 3
    assert child.returncode == 3


def test_a_killed_child_gives_the_negative_signal() -> None:
    child = subprocess.Popen(["sleep", "30"])
    child.kill()
    assert wait_exit(child, 30.0) == -9


def test_times_out_like_popen_and_leaves_the_child_running() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(child, 0.2)
        assert 0.2 <= time.monotonic() - started < 5.0
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_a_child_already_waited_for_gives_its_code() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert wait_exit(child, 1.0) == 0
