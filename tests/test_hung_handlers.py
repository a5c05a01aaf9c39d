"""A timed-out call ends its handler: the caller gets DeadlineExceeded at the deadline, a
reply after it is dropped, and a worker still in that handler a grace period later is killed
and restarted, with the reason in status and events. Real workers, hostile handlers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command, Message

from conftest import (
    PLUGINS,
    copy_plugin,
    data_folder,
    load_active,
    pid_alive,
    plugin_entry,
    running_container,
    runtime_dir_of,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.errors import DeadlineExceeded

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"
TIMEOUT = 0.3  # request_timeout
GRACE = 0.5  # call_grace
FAST = {"backoff_initial": 0.05, "backoff_max": 0.2}


def test_a_reply_at_the_deadline_is_dropped(tmp_path: Path) -> None:
    """The handler sleeps exactly its call's timeout: its reply cannot come before the
    deadline (the deadline is set before the call is sent, the sleep starts after it comes),
    so it must never be delivered, even when it is read in the turn its deadline comes."""
    copy_plugin(CRASHY, tmp_path, "punctual")
    with running_container(request_timeout=TIMEOUT) as container:
        load_active(container, tmp_path, "punctual")
        for _ in range(8):
            with pytest.raises(DeadlineExceeded) as caught:
                container.send_message("punctual", Command(
                    command_name="punctual:sleep", options={"seconds": TIMEOUT}))
            assert caught.value.plugin == "punctual"
            assert "'command:punctual:sleep'" in str(caught.value)
            assert f"within {TIMEOUT:g}s" in str(caught.value)


def _pid(container: PluginContainer, plugin_id: str) -> int | None:
    pid: int | None = plugin_entry(container, plugin_id)["pid"]
    return pid


@pytest.mark.parametrize(("action", "options"), [
    ("sleep", {"seconds": 60}),  # sleeps far past its timeout
    ("hang", {}),  # never returns
    ("spin", {}),  # a busy loop
    ("deaf", {}),  # never returns, and ignores SIGTERM
])
def test_a_handler_past_its_deadline_and_the_grace_is_killed_and_restarted(
        tmp_path: Path, action: str, options: dict[str, Any]) -> None:
    copy_plugin(CRASHY, tmp_path, "stuck")
    copy_plugin(CRASHY, tmp_path, "other")
    with running_container(request_timeout=TIMEOUT, call_grace=GRACE, restart=FAST) as container:
        load_active(container, tmp_path, "stuck")
        load_active(container, tmp_path, "other")
        events = container.follow_events()  # subscribed from here on
        old = _pid(container, "stuck")
        assert old is not None
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as caught:
            container.send_message("stuck", Command(command_name=f"stuck:{action}",
                                                   options=options))
        timed_out = time.monotonic() - started
        assert TIMEOUT * 0.9 <= timed_out < TIMEOUT + 1.0, f"timed out after {timed_out:.2f}s"
        assert caught.value.plugin == "stuck" and f"{TIMEOUT:g}s" in str(caught.value)
        # Meanwhile the same caller is answered by another plugin at once.
        asked = time.monotonic()
        assert container.send_message("other", Command(command_name="other:ping"))["pong"]
        assert time.monotonic() - asked < 1.0
        wait_until(lambda: not pid_alive(old), timeout=TIMEOUT + GRACE + 5,
                   what="the hung worker to be killed")
        killed = time.monotonic() - started
        assert TIMEOUT + GRACE - 0.1 <= killed < TIMEOUT + GRACE + 1.5, f"after {killed:.2f}s"
        reason = f"call to command:stuck:{action} timed out after {TIMEOUT:g}s (killed by SIGKILL)"
        wait_until(lambda: plugin_entry(container, "stuck")["restarts"] == 1, timeout=10,
                   what="the restart")
        entry = plugin_entry(container, "stuck")
        assert entry["state"] == "active" and entry["last_exit"] == reason
        assert container.send_message("stuck", Command(command_name="stuck:ping"))["pong"] \
            == _pid(container, "stuck") != old
        crashed = []
        for event in events:
            if event.event_data.get("plugin") != "stuck":
                continue
            if event.event_name == "system:plugin_crashed":
                crashed.append(event.event_data["reason"])
            if event.event_name == "system:plugin_restarted":
                break
        events.close()
        assert crashed == [reason]
        assert plugin_entry(container, "other")["restarts"] == 0


def test_a_call_queued_behind_a_long_call_times_out_without_a_kill(tmp_path: Path) -> None:
    """The worker is in the long call (its timeout is longer), not in the queued one: the
    queued call times out at its deadline, and the worker is left alone."""
    copy_plugin(CRASHY, tmp_path, "patient")
    with running_container(request_timeout=TIMEOUT, call_grace=GRACE,
                           data_dir=str(tmp_path / "data")) as container:
        load_active(container, tmp_path, "patient")
        pid = _pid(container, "patient")
        marker = data_folder(tmp_path / "data", "patient") / "long-call-began"
        patient = SupervisorClient.find(runtime_dir_of(container))
        outcome: list[object] = []

        def sleep(seconds: float) -> object:
            return patient.send(Command(command_name="patient:sleep", options={
                "seconds": seconds, "marker": str(marker)}), as_plugin="patient", timeout=4.0)

        def call_long() -> None:
            try:
                outcome.append(sleep(2.0))
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=call_long)
        thread.start()
        try:
            wait_until(marker.exists, what="the long call to begin")
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):  # queued behind it, past its deadline
                container.send_message("patient", Command(command_name="patient:ping"))
            assert time.monotonic() - started < TIMEOUT + 1.0
            thread.join(timeout=10)
            assert outcome == [{"slept": 2.0}]  # not killed at the queued call's grace
            # The queued call was reached past its deadline, its grace starting then, and
            # answered at once: a call lasting longer than that grace is served undisturbed.
            assert sleep(GRACE + 0.5) == {"slept": GRACE + 0.5}
        finally:
            patient.close()
        entry = plugin_entry(container, "patient")
        assert entry["pid"] == pid and entry["restarts"] == 0 and entry["last_exit"] is None


def test_a_handler_in_the_callers_process_is_timed_out_never_killed(tmp_path: Path) -> None:
    """A handler living in a caller's process (``container.subscribe``) only times out."""
    copy_plugin(CRASHY, tmp_path, "host")
    with running_container(request_timeout=TIMEOUT, call_grace=GRACE) as container:
        load_active(container, tmp_path, "host")
        pid = _pid(container, "host")
        release = threading.Event()
        calls: list[str] = []

        def slow(message: Message) -> str:
            calls.append(message.command_name)
            release.wait(TIMEOUT + GRACE + 1.0)  # held past the deadline and the grace
            return "late"

        container.subscribe("host", "command:host:slow", slow)
        with pytest.raises(DeadlineExceeded):
            container.send_message("host", Command(command_name="host:slow"))
        assert container.send_message("host", Command(command_name="host:ping"))["pong"] == pid
        release.set()
        wait_until(lambda: len(calls) == 1, what="the caller's handler to have run")
        entry = plugin_entry(container, "host")
        assert entry["pid"] == pid and entry["restarts"] == 0


@pytest.mark.parametrize("operation", ["restart", "unload"])
def test_a_hung_worker_killed_while_it_is_being_stopped(tmp_path: Path, operation: str) -> None:
    """The grace runs out during the orderly part of a restart or unload (its deactivate
    phase queued behind the hung call): the operation goes on from there and succeeds."""
    copy_plugin(CRASHY, tmp_path, "doomed")
    with running_container(request_timeout=TIMEOUT, call_grace=GRACE, stop_timeout=5.0,
                           data_dir=str(tmp_path / "data")) as container:
        load_active(container, tmp_path, "doomed")
        old = _pid(container, "doomed")
        marker = data_folder(tmp_path / "data", "doomed") / "hanging"
        caller = SupervisorClient.find(runtime_dir_of(container))
        outcome: list[object] = []

        def hang() -> None:
            try:
                caller.send(Command(command_name="doomed:hang",
                                    options={"marker": str(marker)}), as_plugin="doomed")
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=hang)
        thread.start()
        try:
            wait_until(marker.exists, what="the hung call to begin")
            started = time.monotonic()
            if operation == "restart":
                container.restart_plugin("doomed")
            else:
                container.unload_plugin("doomed")
            took = time.monotonic() - started
            thread.join(timeout=10)
        finally:
            caller.close()
        assert isinstance(outcome[0], DeadlineExceeded)
        assert took < TIMEOUT + GRACE + 1.5, f"{operation} took {took:.2f}s"  # not 5 s
        assert old is not None and not pid_alive(old)
        if operation == "restart":
            entry = plugin_entry(container, "doomed")
            assert entry["state"] == "active" and entry["pid"] not in (None, old)
            assert entry["last_exit"] == (f"call to command:doomed:hang timed out after "
                                          f"{TIMEOUT:g}s (killed by SIGKILL)")
            assert container.send_message("doomed", Command(
                command_name="doomed:ping"))["pong"] == entry["pid"]
        else:
            assert container.status()["plugins"] == []


def test_a_plugins_tiny_timeout_cannot_get_another_plugin_killed(tmp_path: Path) -> None:
    """A plugin chooses its requests' timeouts, down to a millisecond. The handler it calls
    is still judged hung no sooner than request_timeout (and the grace): else one plugin
    could get any other killed, and kill after kill, failed (a review's PoC)."""
    copy_plugin(CRASHY, tmp_path, "victim")
    copy_plugin(PLUGINS / "host" / "asker", tmp_path, "asker",
                allowed_messages=["request:victim:*"])
    grants = {"asker": {"grant": ["request:victim:*"]}}
    with running_container(request_timeout=2.0, call_grace=GRACE, plugins=grants) as container:
        load_active(container, tmp_path, "victim")
        load_active(container, tmp_path, "asker")
        victim = _pid(container, "victim")
        with pytest.raises(DeadlineExceeded):
            container.message_bus.send(Command(
                command_name="asker:ask", arguments=["victim:sleep"],
                options={"seconds": 1.2, "timeout": 0.05}))
        # Queued behind that 1.2 s sleep, past 0.05 s + the grace: answered, not killed.
        answer = container.send_message("victim", Command(command_name="victim:ping"))
        assert answer == {"pong": victim}
        entry = plugin_entry(container, "victim")
        assert (entry["pid"], entry["restarts"]) == (victim, 0)
