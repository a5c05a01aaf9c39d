"""The lifecycle steps that handle a plugin's worker process: spawn, stop, await its exit.

Process plumbing (the per-spawn secret, the connect deadline, the stop budget and its
SIGTERM → SIGKILL escalation) kept apart from ``lifecycle``, whose operations list these
steps among the phase calls. Each step starts something and continues the operation
(``op.proceed()``) once the worker has said Hello (``connected``) or has exited
(``exited``): a step says on the operation what those mean to it (``op.connect_timer``,
``op.on_exit``). A missed deadline fails the operation.

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
from enum import Enum
from typing import TYPE_CHECKING

from spec_kit_runtime.errors import DeadlineExceeded, RuntimeFailure
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.protocol import Stop

if TYPE_CHECKING:
    from spec_kit_runtime.policy.timers import Timer

    from .operation import Operation
    from .worker_process import WorkerProcess


class OnExit(Enum):
    """What the exit of the plugin's worker means to the operation under way."""

    FAIL = "the operation fails with the worker's death"
    PROCEED = "the operation goes on: it waited for that exit"
    END_STOP = "a stop's worker is gone: no signals for it; its phase's failure goes on"


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


def spawn(op: Operation) -> None:
    """Start the worker with a fresh secret; continue once it proves it in its Hello
    (``connected``).

    The fork server is asked without waiting for it; the deadline counts from the asking.
    """
    slot, lifecycle = op.slot, op.lifecycle
    clock = lifecycle.clock
    op.spawned = True
    slot.secret = secrets.token_bytes(32)
    slot.status = PluginState.LOADING
    limit = lifecycle.config.start_timeout

    def started(worker: WorkerProcess) -> None:
        if op.finished:  # given up on meanwhile: this worker is nobody's
            worker.expected_exit = True
            worker.signal_tree(signal.SIGKILL)
            return
        slot.worker = worker
        slot.started_at = clock.now()

    tag = lifecycle.spawner.spawn(slot, started, op.cannot)

    def too_late() -> None:
        lifecycle.spawner.abandon(tag)
        op.fail(DeadlineExceeded(
            f"plugin '{slot.plugin_id}': worker did not connect within {limit:g}s",
            plugin=slot.plugin_id, phase="start",
        ))

    op.connect_timer = clock.at(clock.now() + limit, too_late)


def connected(op: Operation) -> None:
    """The worker ``spawn`` started has proved its secret: the operation goes on."""
    if op.connect_timer is None:  # no spawn of this operation waits for a Hello
        return
    op.connect_timer.cancel()
    op.connect_timer = None
    slot, lifecycle = op.slot, op.lifecycle
    slot.tracker.started(lifecycle.clock.now())
    lifecycle.emit("plugin_started", {
        "plugin": slot.plugin_id, "pid": slot.worker.pid if slot.worker else None,
    })
    op.proceed()


def exited(op: Operation, error: RuntimeFailure) -> None:
    """The plugin's worker ended during ``op``: what that means was set by its step."""
    means, budget = op.on_exit, op.exit_budget
    op.on_exit, op.exit_budget = OnExit.FAIL, None
    if budget is not None:
        budget.cancel()
    if means is OnExit.PROCEED:
        op.proceed()
    elif means is OnExit.FAIL:
        op.fail(error)


def await_exit(op: Operation) -> None:
    """Continue once the slot's previous worker (if any) is gone."""
    if op.slot.worker is None:
        op.proceed()
        return
    op.on_exit = OnExit.PROCEED


def begin_stop(op: Operation) -> None:
    """Start the stop's budget (``op.stop_budget``): SIGTERM to the worker's tree once it is
    spent, SIGKILL ``stop_timeout`` after that, whatever the orderly steps are doing."""
    if op.slot.worker is not None:
        op.stop_budget = _budget(op, op.slot.worker)
    op.proceed()


def _budget(op: Operation, worker: WorkerProcess) -> StopBudget:
    lifecycle = op.lifecycle
    clock, grace = lifecycle.clock, lifecycle.config.stop_timeout
    by = clock.now() + grace
    if lifecycle.stops_end_by is not None:  # shutting down: the supervisor's budget bounds ours
        by = min(by, lifecycle.stops_end_by)

    def terminate() -> None:
        worker.expected_exit = True
        worker.signal_tree(signal.SIGTERM)

    budget = StopBudget(by, (
        clock.at(by, terminate),
        clock.at(by + grace, lambda: worker.signal_tree(signal.SIGKILL)),
    ))
    # If it ends during a phase of the stop (whose call its end fails; the phase is best
    # effort, so the operation goes on from there), there is nothing left to signal.
    op.on_exit, op.exit_budget = OnExit.END_STOP, budget
    return budget


def stop(op: Operation) -> None:
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
    worker.expected_exit = True
    op.lifecycle.outbox.to_worker(slot, Stop())
    op.on_exit, op.exit_budget = OnExit.PROCEED, budget
