"""``top``: the frame from status answers (pure), and the live view on a real terminal (a
pty): it shows the plugins, refreshes, quits on q and gives the terminal back."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from typing import Any

import pytest

from conftest import GOOD, load_active, running_container, runtime_dir_of
from spec_kit_runtime.cli.top import frame
from spec_kit_runtime.policy.health import Health
from spec_kit_runtime.wire.status import Status, from_data
from test_cli import SCRIPT
from test_status_codec import PLUGIN, SUPERVISOR

pytestmark = pytest.mark.timeout(60)


def plugin(handled: int, **fields: Any) -> dict[str, Any]:
    entry = PLUGIN | {"id": "design", "state": "active", "pid": 42, "restarts": 1,
                      "last_exit": "killed by SIGKILL",
                      "usage": PLUGIN["usage"] | {"cpu_percent": 2.5, "rss_mb": 19.0},
                      "messages": PLUGIN["messages"] | {"handled": handled, "errors": 0,
                                                        "p50_ms": 1.25, "p99_ms": 3.0}}
    return entry | fields


def status(*plugins: dict[str, Any]) -> Status:
    totals = SUPERVISOR["totals"] | {"handled": sum(p["messages"]["handled"] for p in plugins)}
    return from_data(Status, {"supervisor": SUPERVISOR | {"version": "2.0", "pid": 7,
                                                          "uptime": 12.0, "totals": totals},
                              "plugins": list(plugins)})


HEALTHY = Health("healthy", live=True, ready=True, reasons=())


def test_frame_shows_rates_usage_and_health() -> None:
    lines = frame(status(plugin(30)), HEALTHY, status(plugin(10)), 2.0, 200)
    assert lines[0] == "spec-kit-runtime 2.0  pid 7  up 12s  healthy  1 plugins  30 messages"
    header, row = lines[2].split(), lines[3].split()
    assert header[:7] == ["ID", "STATE", "PID", "CPU%", "MEM", "MB", "RESTARTS"]
    assert row[:10] == ["design", "active", "42", "2.5", "19.0", "1", "10.0", "0", "1.2", "3.0"]
    assert lines[3].endswith("killed by SIGKILL") and lines[-1] == "q quits"


def test_frame_without_history_or_samples() -> None:
    degraded = Health("degraded", live=True, ready=False, reasons=("design: restarting",))
    lines = frame(status(plugin(5, usage=None, pid=None)), degraded, None, 0.0, 200)
    assert lines[0].startswith("spec-kit-runtime 2.0  pid 7  up 12s  degraded (not ready)")
    assert lines[1] == "  design: restarting"
    assert lines[4].split()[:7] == ["design", "active", "-", "-", "-", "1", "-"]
    narrow = frame(status(plugin(5)), degraded, None, 0.0, 40)
    assert narrow[0] == "spec-kit-runtime 2.0  pid 7  up 12s  deg"  # cut at the width
    assert all(len(line) <= 40 for line in narrow)


def read_until(fd: int, needle: bytes, timeout: float = 15.0) -> bytes:
    seen = b""
    end = time.monotonic() + timeout
    while needle not in seen:
        remaining = end - time.monotonic()
        assert remaining > 0, f"never saw {needle!r} in {seen[-400:]!r}"
        if select.select([fd], [], [], remaining)[0]:
            seen += os.read(fd, 65536)
    return seen


def test_live_view_on_a_terminal_quits_on_q() -> None:
    with running_container() as container:
        load_active(container, GOOD, "design")
        runtime_dir = runtime_dir_of(container)
        screen, terminal = pty.openpty()
        top = subprocess.Popen([SCRIPT, "top", "--interval", "0.2", "--runtime-dir",
                                str(runtime_dir)], stdin=terminal, stdout=terminal,
                               stderr=terminal)
        os.close(terminal)
        try:
            shown = read_until(screen, b"q quits")
            assert b"\x1b[?1049h" in shown and b"design" in shown and b"healthy" in shown
            read_until(screen, b"\x1b[H\x1b[2J")  # it refreshes
            os.write(screen, b"q")
            assert top.wait(timeout=10) == 0
            assert b"\x1b[?1049l" in read_until(screen, b"\x1b[?1049l")  # screen given back
        finally:
            if top.poll() is None:
                top.kill()
                top.wait()
            os.close(screen)


def test_without_a_terminal_it_refreshes_at_its_pace() -> None:
    """stdin at end of input (cron, nohup) must not make every wait return at once."""
    with running_container() as container:
        runtime_dir = runtime_dir_of(container)
        top = subprocess.Popen([SCRIPT, "top", "--interval", "0.2", "--runtime-dir",
                                str(runtime_dir)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE)
        time.sleep(1.0)  # the pace itself is what is measured here
        top.terminate()
        frames = top.communicate(timeout=10)[0].count(b"\x1b[H\x1b[2J")
        assert 1 <= frames <= 10, frames
