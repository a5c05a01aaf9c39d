"""The lifecycle steps that handle a plugin's worker process: spawn, stop, await its exit.

Process plumbing (the per-spawn secret, the connect deadline, the stop budget and its
SIGTERM → SIGKILL escalation) kept apart from ``lifecycle``, whose operations list these
steps among the phase calls. Each step starts something and continues the operation
(``op.proceed()``) once the worker has said Hello or has exited; a missed deadline fails
the operation.

A stop is bounded whatever the plugin does: the orderly part (the deactivate and shutdown
phases, then the Stop record) shares one budget of ``stop_timeout``, begun by
``begin_stop``; when it is spent the worker's tree gets SIGTERM, and ``stop_timeout`` later
SIGKILL. A handler in flight, a phase that hangs or a plugin that ignores SIGTERM can hold a
stop for at most twice ``stop_timeout`` (and the supervisor's shutdown shortens the budget
to its own, see ``Supervisor.begin_shutdown``).
"""

from __future__ import annotations

import secrets
import signal
from typing import TYPE_CHECKING

from spec_kit_runtime.errors import DeadlineExceeded
from spec_kit_runtime.wire.protocol import Stop

if TYPE_CHECKING:
    from spec_kit_runtime.policy.timers import Timer

    from .lifecycle import _Operation
    from .worker_process import WorkerProcess


class StopBudget:
    """One stop's time: orderly until ``by``; then SIGTERM, and SIGKILL a while later."""

    def __init__(self, by: float, escalation: tuple[Timer, ...]) -> None:
        self.by = by
        self._escalation = escalation

    def remaining(self, now: float) -> float:
        """What is left of the orderly part at ``now`` (0 or less: spent)."""
        return self.by - now

    def cancel(self) -> None:
        """The worker is gone (or the stop given up): no signals for it."""
        for timer in self._escalation:
            timer.cancel()


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


def begin_stop(op: _Operation) -> None:
    """Start the stop's budget (``op.stop_budget``): SIGTERM to the worker's tree once it is
    spent, SIGKILL ``stop_timeout`` after that, whatever the orderly steps are doing."""
    if op.slot.worker is not None:
        op.stop_budget = _budget(op, op.slot.worker)
    op.proceed()


def _budget(op: _Operation, worker: WorkerProcess) -> StopBudget:
    slot, hub = op.slot, op.lifecycle.hub
    grace = hub.config.stop_timeout
    by = hub.now() + grace
    if hub.stopping_by is not None:  # the supervisor is shutting down: its budget bounds ours
        by = min(by, hub.stopping_by)

    def terminate() -> None:
        worker.expected_exit = True
        worker.signal_tree(signal.SIGTERM)

    budget = StopBudget(by, (
        hub.timers.at(by, terminate),
        hub.timers.at(by + grace, lambda: worker.signal_tree(signal.SIGKILL)),
    ))

    def gone() -> None:
        """It ended during a phase of the stop (whose call its end fails; the phase is best
        effort, so the operation goes on from there): nothing left to signal."""
        budget.cancel()
        slot.on_exit = None

    slot.on_exit = gone
    return budget


def stop(op: _Operation) -> None:
    """Send Stop and continue once the worker has exited, within the stop's budget (begun
    by ``begin_stop``, the first step of every stop)."""
    slot, worker = op.slot, op.slot.worker
    budget, op.stop_budget = op.stop_budget, None  # what follows (a restart's start) is no stop
    if worker is None:
        if budget is not None:
            budget.cancel()
        op.proceed()
        return
    assert budget is not None, "begin_stop began it: the worker was there then too"
    held = budget
    worker.expected_exit = True
    op.lifecycle.hub.send_worker(slot, Stop())

    def exited() -> None:
        held.cancel()
        slot.on_exit = None
        op.proceed()

    slot.on_exit = exited
