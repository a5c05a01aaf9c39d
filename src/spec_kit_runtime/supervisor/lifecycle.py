"""Driving each plugin through load → initialize → activate → deactivate → shutdown.

A lifecycle operation is a list of steps run on the supervisor's loop, never blocking it:
each step starts something (a spawn, a phase call, a stop) and continues when the worker
answers, a timer fires or the process exits. One operation runs per plugin at a time;
later ones queue behind it. The steps that handle the worker process are in
``worker_steps``; the worker's Hello and its exit reach the operation waiting for them
through ``worker_connected`` and ``worker_exited``, called by the loop. What follows a
worker's own end (the restart policy) is in ``recovery``.

The parts it works through are ports (``ports``): the slot table, the clock, the router
(to call phases), the system-event emitter, the worker table (to spawn) and the outbox.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any

from spec_kit_runtime.errors import PluginStateError, RuntimeFailure, WorkerDiedError
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.policy.exits import ExitKind, ExitReason
from spec_kit_runtime.policy.grants import Grants, decide
from spec_kit_runtime.policy.restart import RestartTracker
from spec_kit_runtime.policy.scopes import Scope
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.codec import pack_error, pack_value
from spec_kit_runtime.wire.protocol import PhaseName

from . import phase_steps, requirement_check, worker_steps
from .operation import INTERRUPTIBLE, STOPS, Operation, Step
from .slots import PluginSlot, Responder, SlotTable

if TYPE_CHECKING:
    from spec_kit_runtime.plugins.config import RuntimeConfig

    from .ports import Clock, Emit, Outbox, Spawner, WorkerCalls

log = logging.getLogger(__name__)


class Lifecycle:
    """The plugin slots and the operations that move them between states."""

    def __init__(self, slots: SlotTable, clock: Clock, calls: WorkerCalls, emit: Emit,
                 spawner: Spawner, outbox: Outbox, config: RuntimeConfig) -> None:
        self.slots, self.clock, self.calls, self.emit = slots, clock, calls, emit
        self.spawner, self.outbox, self.config = spawner, outbox, config
        self.stops_end_by: float | None = None  # shutting down: every stop's orderly part
        # ends by then (see Supervisor.begin_shutdown)
        self._current: dict[str, Operation] = {}

    # -- operations ------------------------------------------------------------------------

    def load(self, info: PluginInfo, config: dict[str, Any], done: Responder) -> None:
        """Spawn the worker, load the plugin and initialize it with ``config``."""
        existing = self.slots.get(info.id)
        if existing is not None and existing.loaded and existing.info.path != info.path:
            raise PluginStateError(
                f"plugin '{info.id}' is loaded from {existing.info.path}, not {info.path}: "
                "unload it first", plugin=info.id)
        if (existing is not None and existing.status == PluginState.ERROR and not existing.busy
                and existing.worker is not None and existing.worker.expected_exit):
            # Loading again right after a failed load: the old worker was SIGKILLed but its
            # exit is not seen yet. Reuse the slot and start once that worker is gone.
            existing.info, existing.config = info, config
            existing.grants = self._grants(info)
            existing.scope = Scope(info.id, existing.grants.granted)
            steps = [worker_steps.await_exit, requirement_check.check, *self._load_steps(config)]
            self._enqueue(existing, "load", steps, done)
            return
        if existing is not None and (existing.worker is not None or existing.busy):
            if existing.busy or existing.status not in (PluginState.INITIALIZED,
                                                                PluginState.ACTIVE):
                raise PluginStateError(
                    f"plugin '{info.id}' cannot be loaded now: it is {existing.status}"
                    + (f" ({existing.busy} in progress)" if existing.busy else ""),
                    plugin=info.id)
            log.warning("plugin %s is already loaded", info.id)  # 1.0: not an error
            done(True, pack_value(existing.answer(with_facts=True)))
            return
        tracker = RestartTracker(self.config.restart_policy_for(
            info.id, info.manifest.get("restart")))
        missing = [d for d in info.dependencies if d not in self.slots]
        if missing:
            raise PluginStateError(
                f"plugin '{info.id}' depends on {', '.join(repr(m) for m in missing)}, "
                "which is not loaded: load dependencies first", plugin=info.id)
        grants = self._grants(info)
        slot = PluginSlot(info, config, Scope(info.id, grants.granted), tracker,
                          self.config.limits_for(info.id), grants=grants)
        self.slots[info.id] = slot
        self._enqueue(slot, "load", [requirement_check.check, *self._load_steps(config)], done)

    def _grants(self, info: PluginInfo) -> Grants:
        """What of its manifest's allowed_messages the plugin gets (grants.py); what it
        does not is logged and announced (``event:system:plugin_grants_refused``)."""
        grants = decide(info.id, info.allowed_messages,
                        self.config.settings_for(info.id).grant)
        if grants.refused:
            log.warning("plugin %s asks for %s, which the operator did not grant "
                        "(plugins.%s.grant): it runs without", info.id,
                        ", ".join(grants.refused), info.id)
            self.emit("plugin_grants_refused", {
                "plugin": info.id, "refused": list(grants.refused)})
        return grants

    def _load_steps(self, config: dict[str, Any], activate: bool = False) -> list[Step]:
        """A new worker up to initialized (or ``activate``d: the phases go all at once)."""
        phases = [(PhaseName.LOAD, b""), (PhaseName.INITIALIZE, pack_value(config))]
        if activate:
            phases.append((PhaseName.ACTIVATE, b""))
        return [self._drop_routes, worker_steps.spawn, phase_steps.phases(*phases)]

    def activate(self, plugin_id: str, done: Responder) -> None:
        # Routes are re-announced by the worker during the phase; drop any stale ones first
        # (not those of an active plugin: a refused second activate must not cost them).
        steps = [self._refuse_if_active, self._drop_routes, phase_steps.phase(PhaseName.ACTIVATE)]
        self._enqueue(self.slots.require(plugin_id), "activate", steps, done)

    @staticmethod
    def _refuse_if_active(op: Operation) -> None:
        if op.slot.active:
            raise PluginStateError(f"plugin '{op.slot.plugin_id}' is already active",
                                   plugin=op.slot.plugin_id)
        op.proceed()

    def deactivate(self, plugin_id: str, done: Responder) -> None:
        slot = self.slots.require(plugin_id)
        steps = [phase_steps.phase(PhaseName.DEACTIVATE), self._drop_routes]
        self._enqueue(slot, "deactivate", steps, done)

    def unload(self, plugin_id: str, done: Responder) -> None:
        """Deactivate if active, shut down, stop the worker and forget the plugin."""
        slot = self.slots.require(plugin_id)
        self._enqueue(slot, "unload", [*self._stop_steps(), self._forget], done)

    def stop(self, plugin_id: str, done: Responder) -> None:
        """Stop the plugin's worker in order and keep it stopped (not restarted)."""
        slot = self.slots.require(plugin_id)
        self._enqueue(slot, "stop", [*self._stop_steps(), self._mark_stopped], done)

    def start(self, plugin_id: str, done: Responder) -> None:
        """Start a stopped or failed plugin again, up to active, with a fresh restart history."""
        slot = self.slots.require(plugin_id)
        self._enqueue(slot, "start", [requirement_check.check, *self._start_steps(slot)], done)

    def restart(self, plugin_id: str, done: Responder) -> None:
        """Stop the plugin's worker in order, then start it again, up to active."""
        slot = self.slots.require(plugin_id)
        self._enqueue(slot, "restart", [*self._stop_steps(), *self._start_steps(slot)], done)

    def _stop_steps(self) -> list[Step]:
        """Deactivate and shut down if possible; stop the worker in any case. The phases and
        the Stop share one budget of stop_timeout, then SIGTERM, then SIGKILL (worker_steps):
        a busy or stubborn plugin is stopped within twice stop_timeout."""
        shutdown = phase_steps.phase(PhaseName.SHUTDOWN, best_effort=True)
        return [self._cancel_restart, worker_steps.begin_stop, phase_steps.deactivate_if_active,
                phase_steps.if_running(shutdown), worker_steps.stop]

    def _start_steps(self, slot: PluginSlot) -> list[Step]:
        def fresh_history(op: Operation) -> None:
            if op.slot.worker is not None:
                raise PluginStateError(f"plugin '{slot.plugin_id}' is already running "
                                       f"(state {slot.status})", plugin=slot.plugin_id)
            op.slot.tracker = RestartTracker(op.slot.tracker.policy)
            self._cancel_restart(op)  # a restart pending is this start's now; it proceeds

        return [fresh_history, *self._load_steps(slot.config, activate=True)]

    def recover(self, slot: PluginSlot, done: Responder) -> None:
        """Once the crashed worker is gone, start the plugin again up to its target state."""
        steps = [worker_steps.await_exit,
                 *self._load_steps(slot.config, activate=slot.target == PluginState.ACTIVE)]
        self._enqueue(slot, "recover", steps, done)

    def _enqueue(self, slot: PluginSlot, name: str, steps: list[Step], done: Responder) -> None:
        slot.ops.append((name, steps, done))
        if slot.busy is None:
            self.start_next(slot)
        elif name in STOPS:
            self._interrupt(slot, name)

    def after_current(self, plugin_id: str, done: Responder) -> None:
        """``done`` once the operations now asked of the plugin have run (a step-less one,
        queued behind them)."""
        self._enqueue(self.slots.require(plugin_id), "settle", [], done)

    def _interrupt(self, slot: PluginSlot, by: str) -> None:
        """A stop waits for no operation that may wait on the worker (up to start_timeout
        or phase_timeout): those queued ahead of it fail now, and so does the one running
        (a worker it started is killed)."""
        def interrupted(what: str) -> bytes:
            return pack_error(PluginStateError(
                f"plugin '{slot.plugin_id}': {what} interrupted by {by}", plugin=slot.plugin_id,
                interrupted_by=by))

        ahead = list(slot.ops)[:-1]
        dropped = [queued for queued in ahead if queued[0] in INTERRUPTIBLE]
        for queued in dropped:
            slot.ops.remove(queued)
        for name, _, done in dropped:
            done(False, interrupted(name))
        current = self._current.get(slot.plugin_id)
        if current is not None and current.name in INTERRUPTIBLE:
            current.fail(PluginStateError(f"plugin '{slot.plugin_id}': {current.name} "
                                          f"interrupted by {by}", plugin=slot.plugin_id,
                                          interrupted_by=by))

    def _start(self, slot: PluginSlot, name: str, steps: list[Step], done: Responder) -> None:
        if self.slots.get(slot.plugin_id) is not slot:  # unloaded while these waited
            waiting = [(name, steps, done), *slot.ops]
            slot.ops.clear()
            for what, _, answer in waiting:
                answer(False, pack_error(PluginStateError(
                    f"plugin '{slot.plugin_id}' was unloaded before {what} could run",
                    plugin=slot.plugin_id)))
            return
        slot.busy = name
        operation = Operation(self, slot, name, steps, done)
        self._current[slot.plugin_id] = operation
        operation.proceed()

    def ended(self, operation: Operation) -> None:
        """``operation`` is over: it is no longer the one running on its plugin."""
        if self._current.get(operation.slot.plugin_id) is operation:
            del self._current[operation.slot.plugin_id]

    def start_next(self, slot: PluginSlot) -> None:
        if slot.busy is None and slot.ops:
            name, steps, done = slot.ops.popleft()
            self._start(slot, name, steps, done)

    def after_failure(self, operation: Operation) -> None:
        """A failed start leaves no half-started worker behind (and a start refused before
        it spawned anything leaves the running worker alone)."""
        slot = operation.slot
        starting = operation.spawned
        if starting and slot.worker is not None:
            slot.worker.expected_exit = True
            slot.worker.signal_tree(signal.SIGKILL)
        if starting or operation.name == "unload" or slot.worker is None:
            slot.status = PluginState.ERROR  # not whatever the killed worker's plugin last said

    # -- steps -----------------------------------------------------------------------------

    def _drop_routes(self, op: Operation) -> None:
        self.calls.clear_routes(op.slot.plugin_id)
        op.proceed()

    def _cancel_restart(self, op: Operation) -> None:
        if op.slot.restart_timer is not None:
            op.slot.restart_timer.cancel()
            op.slot.restart_timer = None
        op.proceed()

    def _mark_stopped(self, op: Operation) -> None:
        op.slot.status = PluginState.STOPPED
        op.proceed()

    def _forget(self, op: Operation) -> None:
        self.calls.clear_routes(op.slot.plugin_id)
        self.slots.pop(op.slot.plugin_id, None)
        op.slot.status = PluginState.UNLOADED
        op.proceed()  # operations queued behind this one fail (``_start``): it is gone

    # -- process events --------------------------------------------------------------------

    def _operation_on(self, slot: PluginSlot) -> Operation | None:
        """The operation under way on ``slot`` (not on another load of its id)."""
        current = self._current.get(slot.plugin_id)
        return current if current is not None and current.slot is slot else None

    def worker_connected(self, slot: PluginSlot) -> None:
        """The worker of ``slot`` proved its secret in a Hello: the spawn waiting for it
        goes on."""
        mark("hello")
        current = self._operation_on(slot)
        if current is not None:
            worker_steps.connected(current)

    def worker_exited(self, slot: PluginSlot, reason: ExitReason) -> RuntimeFailure | None:
        """The worker of ``slot`` ended: record why, fail what waited on it (but the calls
        it had not begun, which may wait for its replacement: ``Router.owner_gone``), tell
        subscribers, and hand its end to the operation under way. Returns the error when
        the restart policy is to decide what follows (it ended on its own, no operation
        was under way, and the plugin has a state to go back to)."""
        now = self.clock.now()
        slot.worker = None
        slot.identity = None
        slot.last_exit, slot.last_exit_at = reason.describe(), now
        error = WorkerDiedError(
            f"plugin '{slot.plugin_id}' worker {reason.describe()}",
            plugin=slot.plugin_id, reason=reason.describe(),
        )
        # Decided before the calls in flight fail: failing a phase's call may end the
        # operation under way (and start the next one queued), and an end during an
        # operation is its caller's to hear, not the restart policy's.
        current = self._operation_on(slot)
        for_policy = None
        if reason.expected:
            log.info("plugin %s: worker %s", slot.plugin_id, reason.describe())
        else:
            log.error("plugin %s: worker %s", slot.plugin_id, reason.describe())
            if reason.cause_kind is ExitKind.LIMIT:
                self.emit("plugin_limit_exceeded", {
                    "plugin": slot.plugin_id, "reason": reason.describe(),
                })
            self.emit("plugin_crashed", {
                "plugin": slot.plugin_id, "reason": reason.describe(),
            })
            if current is None and slot.target is not None:
                for_policy = error
            else:  # an operation was under way: its caller gets the error, no restart
                slot.status = PluginState.ERROR
                slot.last_error = error.message
        self.calls.owner_gone(slot.plugin_id, error, reason.began)
        if current is not None and not current.finished:  # not one that began meanwhile
            worker_steps.exited(current, error)
        if for_policy is None:  # calls put back for a restart that is not the policy's to
            self.calls.settled(slot.plugin_id)  # decide: they go on, or fail, by its state
        return for_policy
