"""The lifecycle steps that run phases in the plugin's worker: load, initialize, activate,
deactivate, shutdown, called through the router with ``phase_timeout`` each.

A phase's answer is checked before it is taken: the worker is not trusted, so a status
must be a short printable string and the load's facts must pass ``facts.checked``.
"""

from __future__ import annotations

import functools
import logging

from spec_kit_runtime.errors import (
    LifecycleError,
    PluginStateError,
    ProtocolError,
    RuntimeFailure,
    from_data,
)
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.plugins import facts
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.codec import unpack_value
from spec_kit_runtime.wire.protocol import MAX_STATUS_LENGTH, Phase, PhaseName

from .operation import Operation, Step
from .slots import PluginSlot, Responder

log = logging.getLogger(__name__)


def phase(name: PhaseName, body: bytes = b"", best_effort: bool = False) -> Step:
    """Run lifecycle phase ``name`` in the worker; ``best_effort``: a failure (or a hang
    past its timeout) is logged and the operation goes on: stopping must not stall."""
    return phases((name, body), best_effort=best_effort)


def phases(*phases: tuple[PhaseName, bytes], best_effort: bool = False) -> Step:
    """Run lifecycle phases in the worker in this order, all sent at once.

    Sending load, initialize and activate together saves two round trips of every
    (re)start; the worker skips the rest after a failure. Each phase gets phase_timeout
    from the answer to the one before it, as if it had been sent then (every later one is
    postponed at each answer). A phase of a stop gets what is left of the stop's budget
    (at most phase_timeout), and is skipped once that is spent.
    """
    assert len(phases) == 1 or not best_effort, "best effort is for single phases"

    def step(op: Operation) -> None:
        lifecycle = op.lifecycle
        slot, calls = op.slot, lifecycle.calls
        if slot.identity is None:
            raise PluginStateError(
                f"plugin '{slot.plugin_id}' has no running worker (state {slot.status})",
                plugin=slot.plugin_id, phase=str(phases[0][0]),
            )
        timeout = lifecycle.config.phase_timeout
        if op.stop_budget is not None:
            timeout = min(timeout, op.stop_budget.remaining(lifecycle.clock.now()))
            if timeout <= 0:
                log.warning("plugin %s: %s phase skipped, the stop's time is spent",
                            slot.plugin_id, phases[0][0])
                op.proceed()
                return
        cids: list[int] = []

        def answered(index: int, name: PhaseName) -> Responder:
            def on_reply(ok: bool, reply: bytes) -> None:
                if op.finished:  # an earlier phase of the batch failed: nothing to change
                    return
                try:
                    value = unpack_value(reply)
                    error = _taken(slot, name, value) if ok else from_data(value)
                except RuntimeFailure as exc:
                    error = exc
                if error is None:
                    mark(f"{name}-answered")
                    for later in cids[index + 1:]:  # as if sent now
                        calls.postpone(later, timeout)
                    if index + 1 == len(phases):
                        op.proceed()
                elif best_effort:
                    slot.last_error = error.message
                    log.warning("plugin %s: %s failed, stopping anyway: %s",
                                slot.plugin_id, name, slot.last_error)
                    op.proceed()
                else:
                    op.fail(error)
            return on_reply

        for index, (name, body) in enumerate(phases):
            cids.append(calls.call(
                slot.plugin_id, functools.partial(Phase, phase=str(name), body=body), timeout,
                f"{name} phase", answered(index, name)))

    return step

def deactivate_if_active(op: Operation) -> None:
    if op.slot.status == PluginState.ACTIVE and op.slot.identity is not None:
        phase(PhaseName.DEACTIVATE, best_effort=True)(op)
    else:
        op.proceed()

def if_running(step: Step) -> Step:
    """The step, skipped when the worker is gone (a crashed plugin can still be unloaded)."""
    def maybe(op: Operation) -> None:
        if op.slot.identity is not None:
            step(op)
        else:
            op.proceed()
    return maybe


def _taken(slot: PluginSlot, phase: PhaseName, answer: object) -> RuntimeFailure | None:
    """Take a worker's successful phase answer: its status, and the load's facts (checked:
    the worker is not trusted). The error that makes the answer unusable, if any."""
    status = answer.get("status") if isinstance(answer, dict) else None
    if not (isinstance(status, str) and 0 < len(status) <= MAX_STATUS_LENGTH
            and status.isprintable()):
        return ProtocolError(f"plugin '{slot.plugin_id}' answered its {phase} phase with no "
                             "usable status", plugin=slot.plugin_id, phase=str(phase))
    assert isinstance(answer, dict)
    if "plugin" in answer:
        try:
            slot.facts = facts.checked(answer["plugin"])
        except ValueError as exc:
            return LifecycleError(f"plugin '{slot.plugin_id}' reported unusable metadata: "
                                  f"{exc}", plugin=slot.plugin_id, phase=str(phase))
        slot.facts_generation += 1
    slot.status = status
    return None
