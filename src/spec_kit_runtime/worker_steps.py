"""The lifecycle steps that handle a plugin's worker process: spawn, stop, await its exit.

Process plumbing (the per-spawn secret, the connect deadline, the Stop → SIGTERM → SIGKILL
escalation) kept apart from ``lifecycle``, whose operations list these steps among the
phase calls. Each step starts something and continues the operation (``op.proceed()``)
once the worker has said Hello or has exited; a missed deadline fails the operation.
"""

from __future__ import annotations

import secrets
import signal
from typing import TYPE_CHECKING

from .errors import DeadlineExceeded
from .protocol import Stop

if TYPE_CHECKING:
    from .lifecycle import _Operation
    from .worker_process import WorkerProcess


def spawn(op: _Operation) -> None:
    """Start the worker with a fresh secret; continue once it proves it in its Hello.

    The fork server is asked without waiting for it; the deadline counts from the asking.
    """
    slot, hub = op.slot, op.lifecycle.hub
    op.spawned = True
    slot.secret = secrets.token_bytes(32)
    slot.status = "loading"
    limit = hub.config.start_timeout

    def started(worker: WorkerProcess) -> None:
        if op.finished:  # given up on meanwhile: this worker is nobody's
            worker.expected_exit = True
            worker.signal_tree(signal.SIGKILL)
            return
        slot.worker = worker
        slot.started_at = hub.now()
        hub.worker_door.spawned(slot)  # its Hello may have come first

    tag = hub.spawn_worker(slot, started, op.cannot)

    def too_late() -> None:
        hub.abandon_spawn(tag)
        op.fail(DeadlineExceeded(
            f"plugin '{slot.plugin_id}': worker did not connect within {limit:g}s",
            plugin=slot.plugin_id, phase="start",
        ))

    timer = hub.timers.at(hub.now() + limit, too_late)

    def hello() -> None:
        timer.cancel()
        slot.tracker.started(hub.now())
        hub.router.emit_system("plugin_started", {
            "plugin": slot.plugin_id, "pid": slot.worker.pid if slot.worker else None,
        })
        op.proceed()

    slot.on_hello = hello


def await_exit(op: _Operation) -> None:
    """Continue once the slot's previous worker (if any) is gone."""
    slot = op.slot
    if slot.worker is None:
        op.proceed()
        return

    def exited() -> None:
        slot.on_exit = None
        op.proceed()

    slot.on_exit = exited


def stop(op: _Operation) -> None:
    """Ask the worker to stop; SIGTERM after stop_timeout, SIGKILL after twice that."""
    slot, worker, hub = op.slot, op.slot.worker, op.lifecycle.hub
    if worker is None:
        op.proceed()
        return
    worker.expected_exit = True
    hub.send_worker(slot, Stop())
    grace = hub.config.stop_timeout
    now = hub.now()
    term = hub.timers.at(now + grace, lambda: worker.signal_tree(signal.SIGTERM))
    kill = hub.timers.at(now + 2 * grace, lambda: worker.signal_tree(signal.SIGKILL))

    def exited() -> None:
        term.cancel()
        kill.cancel()
        op.proceed()

    slot.on_exit = exited
