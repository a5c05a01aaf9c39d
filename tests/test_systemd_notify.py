"""systemd's notify protocol, against a real datagram socket standing in for systemd:
READY=1 once the plugins are active, WATCHDOG=1 at half the period, STOPPING=1."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from conftest import GOOD
from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.supervisor.ops.systemd_notify import SystemdNotifier
from test_cli import start_run, stop_run

pytestmark = pytest.mark.timeout(60)


def test_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(tmp_path / "notify"))
    systemd.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"}
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--plugins", str(GOOD), "--runtime-dir", str(runtime_dir),
                    env=env, runtime_dir=runtime_dir)
    try:
        messages = []
        while not any(m.startswith("READY=1") for m in messages):
            messages.append(systemd.recv(4096).decode())
        ready = next(m for m in messages if m.startswith("READY=1"))
        assert ready == "READY=1\nSTATUS=2 plugins active"
        client = SupervisorClient.find(runtime_dir, control=True)
        try:
            status = client.control("status", timeout=10.0)  # once: active before READY
        finally:
            client.close()
        assert sorted((p["id"], p["state"]) for p in status["plugins"]) == [
            ("audit", "active"), ("design", "active")]
        fed = [systemd.recv(4096).decode() for _ in range(3)]  # 0.1 s apart
        assert fed == ["WATCHDOG=1"] * 3
        run.process.send_signal(signal.SIGTERM)
        while (message := systemd.recv(4096).decode()) == "WATCHDOG=1":
            pass
        assert message == "STOPPING=1"
        assert run.process.wait(timeout=20) == 0
    finally:
        stop_run(run)
        systemd.close()


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.notify("READY=1")  # no socket: a no-op


@pytest.mark.parametrize(("environ", "interval"), [
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}, 15.0),
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # not us
    ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "0"}, None),
    ({"NOTIFY_SOCKET": "@x"}, None),
])
def test_watchdog_interval_is_half_the_period(environ: dict[str, str],
                                              interval: float | None) -> None:
    notifier = SystemdNotifier(environ)
    try:
        assert notifier.watchdog_interval == interval
    finally:
        notifier.close()
