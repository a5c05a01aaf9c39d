"""Stops are bounded: unload, stop, restart and the supervisor's shutdown of plugins with a
handler in flight (sleeping, hung, spinning, deaf to SIGTERM) return within stop_timeout for
the orderly part plus stop_timeout after SIGTERM, never the phase or request timeout.

The calls in flight have a long timeout of their own (legitimately long work), so neither
their deadline nor call_grace ends them first: only the stop's budget can.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import (
    PLUGINS,
    all_gone,
    copy_plugin,
    data_folder,
    load_active,
    pid_alive,
    plugin_entry,
    running_container,
    runtime_dir_of,
    track,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.errors import RuntimeFailure, WorkerDiedError

pytestmark = pytest.mark.timeout(90)
CRASHY = PLUGINS / "crash" / "crashy"
STOP = 0.5  # stop_timeout
BOUND = 2 * STOP + 1.5  # the orderly part, SIGTERM, SIGKILL; and a generous margin
LONG = 60.0  # the busy calls' own timeout: far beyond the bound
BUSY = {  # command → options: each holds the plugin's thread well past the bound
    "sleep": {"seconds": LONG},
    "hang": {},
    "spin": {},
    "deaf": {},  # ignores SIGTERM too: only SIGKILL ends it
}
_markers = itertools.count()


@contextmanager
def busy(container: PluginContainer, plugin_id: str, action: str,
         data_dir: Path) -> Iterator[list[object]]:
    """A call to ``plugin_id`` that keeps its handler busy, from a thread of its own, in
    progress inside the block; what it ended with is in the list afterwards."""
    marker = data_folder(data_dir, plugin_id) / f"busy-{next(_markers)}"
    client = SupervisorClient.find(runtime_dir_of(container))
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(client.send(Command(
                command_name=f"{plugin_id}:{action}",
                options={**BUSY[action], "marker": str(marker)}),
                as_plugin=plugin_id, timeout=LONG))
        except RuntimeFailure as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    try:
        wait_until(marker.exists, what=f"{plugin_id}:{action} to begin")
        yield outcome
    finally:
        thread.join(timeout=LONG)
        client.close()


def timed(operation: Any, *args: Any) -> float:
    started = time.monotonic()
    operation(*args)
    return time.monotonic() - started


def pid_of(container: PluginContainer, plugin_id: str) -> int:
    pid = plugin_entry(container, plugin_id)["pid"]
    assert isinstance(pid, int)
    return pid


def at_least(action: str) -> float:
    """The least a stop of a plugin busy with ``action`` takes: its orderly part waits the
    whole budget; a deaf one also waits for SIGKILL (margin for the clock's granularity)."""
    return (2 * STOP if action == "deaf" else STOP) - 0.05


@pytest.mark.parametrize("action", list(BUSY))
def test_stop_restart_and_unload_of_a_busy_plugin_are_bounded(tmp_path: Path,
                                                              action: str) -> None:
    copy_plugin(CRASHY, tmp_path, "busy")
    data = tmp_path / "data"
    with running_container(stop_timeout=STOP, data_dir=str(data)) as container:
        load_active(container, tmp_path, "busy")

        old = pid_of(container, "busy")
        with busy(container, "busy", action, data) as outcome:
            took = timed(container.stop_plugin, "busy")
        assert at_least(action) <= took < BOUND, f"stop took {took:.2f}s"
        assert not pid_alive(old)
        assert isinstance(outcome[0], WorkerDiedError)  # its caller is told, not left waiting
        assert plugin_entry(container, "busy")["state"] == "stopped"

        container.start_plugin("busy")
        old = pid_of(container, "busy")
        with busy(container, "busy", action, data):
            took = timed(container.restart_plugin, "busy")
        assert at_least(action) <= took < BOUND, f"restart took {took:.2f}s"
        assert not pid_alive(old)
        new = pid_of(container, "busy")
        assert container.send_message("busy", Command(command_name="busy:ping"))["pong"] == new

        with busy(container, "busy", action, data):
            took = timed(container.unload_plugin, "busy")
        assert at_least(action) <= took < BOUND, f"unload took {took:.2f}s"
        assert not pid_alive(new)
        assert container.status()["plugins"] == []


def test_a_shutdown_with_many_busy_plugins_is_bounded_once(tmp_path: Path) -> None:
    """Every plugin busy, a deaf one with a dependency: the shutdown takes about twice
    stop_timeout in all, not that per plugin, nor per level of dependencies."""
    for action in BUSY:
        copy_plugin(CRASHY, tmp_path, f"b_{action}")
    copy_plugin(CRASHY, tmp_path, "base")
    copy_plugin(CRASHY, tmp_path, "top", dependencies=["base"])
    data = tmp_path / "data"
    with running_container(stop_timeout=STOP, data_dir=str(data)) as container:
        for plugin_id in ("base", "top", *(f"b_{action}" for action in BUSY)):
            load_active(container, tmp_path, plugin_id)
        pids = track(container)
        assert len(pids) == 2 + 2 + len(BUSY)  # supervisor, fork server, workers
        with contextlib.ExitStack() as stack:
            for action in BUSY:
                stack.enter_context(busy(container, f"b_{action}", action, data))
            stack.enter_context(busy(container, "top", "deaf", data))
            took = timed(container.shutdown)
        assert took < BOUND, f"shutdown took {took:.2f}s"
        all_gone(pids, timeout=1.0, what="the supervisor and its busy workers")


@pytest.mark.parametrize("operation", ["unload_plugin", "stop_plugin"])
def test_a_stop_interrupts_a_start_that_hangs(tmp_path: Path, operation: str) -> None:
    """A stop asked while the plugin's activate hangs does not wait phase_timeout for it:
    the activate fails, interrupted, and the stop keeps its own bound."""
    copy_plugin(CRASHY, tmp_path, "stuck")
    with running_container(stop_timeout=STOP, phase_timeout=LONG) as container:
        container.discover_plugins([tmp_path])
        container.load_plugin(container.discovered_plugins["stuck"], {"hang_in": "activate"})
        outcome: list[BaseException] = []

        def activate() -> None:
            try:
                container.activate_plugin("stuck")
            except BaseException as exc:
                outcome.append(exc)

        waiting = threading.Thread(target=activate)
        waiting.start()
        try:
            wait_until(lambda: plugin_entry(container, "stuck")["busy"] == "activate",
                       what="the activate under way")
            took = timed(getattr(container, operation), "stuck")
        finally:
            waiting.join(BOUND)
        assert took < BOUND, f"{operation} took {took:.2f}s"
        assert outcome and "activate interrupted by" in str(outcome[0])


def test_a_stop_interrupts_an_activate_that_run_started(tmp_path: Path) -> None:
    """``run`` asks for each plugin's activate as its load finishes (from the load's own
    answer): that activate must be as interruptible as any other (it was not)."""
    from test_cli import run_control, start_run, stop_run, wait_busy

    plugins = tmp_path / "plugins"
    copy_plugin(CRASHY, plugins, "stuck")
    config = tmp_path / "runtime.yaml"
    config.write_text(f"runtime:\n  stop_timeout: {STOP}\n  phase_timeout: {LONG}\n"
                      "plugins:\n  stuck:\n    config: {hang_in: activate}\n")
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--config", str(config), "--plugins", str(plugins),
                    "--runtime-dir", str(runtime_dir), runtime_dir=runtime_dir)
    try:
        wait_busy(run, "stuck", "activate")
        took = timed(lambda: run_control(run, "stop", plugin="stuck"))
        assert took < BOUND, f"stop took {took:.2f}s"
    finally:
        stop_run(run)


def test_a_stop_also_interrupts_what_was_queued_ahead_of_it(tmp_path: Path) -> None:
    """An activate hangs, a deactivate waits behind it, then a stop: both fail at once,
    and the stop keeps its bound (the deactivate used to run against the stuck worker)."""
    copy_plugin(CRASHY, tmp_path, "stuck")
    with running_container(stop_timeout=STOP, phase_timeout=LONG) as container:
        container.discover_plugins([tmp_path])
        container.load_plugin(container.discovered_plugins["stuck"], {"hang_in": "activate"})
        outcomes: dict[str, BaseException] = {}

        def call(operation: str) -> None:
            try:
                getattr(container, operation)("stuck")
            except BaseException as exc:
                outcomes[operation] = exc

        first = threading.Thread(target=call, args=("activate_plugin",))
        first.start()
        wait_until(lambda: plugin_entry(container, "stuck")["busy"] == "activate",
                   what="the activate under way")
        second = threading.Thread(target=call, args=("deactivate_plugin",))
        second.start()
        wait_until(lambda: plugin_entry(container, "stuck")["queued"] == ["deactivate"],
                   what="the deactivate queued")
        try:
            took = timed(container.stop_plugin, "stuck")
        finally:
            first.join(BOUND)
            second.join(BOUND)
        assert took < BOUND, f"stop took {took:.2f}s"
        assert "activate interrupted by stop" in str(outcomes["activate_plugin"])
        assert "interrupted by stop" in str(outcomes["deactivate_plugin"])
