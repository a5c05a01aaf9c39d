"""Carrying out a plugin's restart policy when its worker ends on its own.

The decision is pure and lives in ``policy.restart``; this module acts on it on the
supervisor's loop: it schedules the restart (never inline, so the loop stays responsive
while a plugin flaps), runs the lifecycle's "recover" operation when the timer fires,
restarts dependents under ``rest_for_one``, and marks a plugin failed when the policy
gives up. The loop hands it each end that ``Lifecycle.worker_exited`` leaves to the
policy; it drives the lifecycle, which does not know it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from spec_kit_runtime.errors import RuntimeFailure, from_data
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.policy.dependencies import dependents_of
from spec_kit_runtime.policy.exits import ExitReason
from spec_kit_runtime.policy.restart import Ending, GiveUp, Restart, Strategy
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.codec import unpack_value

from .slots import PluginSlot, Responder, SlotTable

if TYPE_CHECKING:
    from .lifecycle import Lifecycle
    from .ports import Clock, Emit

log = logging.getLogger(__name__)


class Recovery:
    """Applies each plugin's restart policy through the lifecycle's operations."""

    def __init__(self, lifecycle: Lifecycle, slots: SlotTable, clock: Clock, emit: Emit,
                 strategy: Strategy, settled: Callable[[str], None]) -> None:
        """``settled``: told of each decision, for the calls waiting for the plugin to be
        ready (``Router.settled``): a plugin that will not come back fails them."""
        self.lifecycle, self.slots, self.clock, self.emit = lifecycle, slots, clock, emit
        self.strategy, self._settled = strategy, settled

    def worker_ended(self, slot: PluginSlot, reason: ExitReason, error: RuntimeFailure) -> None:
        """A worker ended on its own while no operation was under way: apply the policy."""
        self._after_end(slot, _ending(reason), error)

    def _after_end(self, slot: PluginSlot, ending: Ending, error: RuntimeFailure) -> None:
        """Apply the plugin's restart policy to a worker that ended on its own."""
        decision = slot.tracker.decide(ending, self.clock.now())
        slot.last_error = error.message
        if isinstance(decision, Restart):
            slot.status = PluginState.RESTARTING
            log.warning("plugin %s: restarting in %.3gs", slot.plugin_id, decision.delay)
            self.emit("plugin_restarting", {
                "plugin": slot.plugin_id, "delay": decision.delay, "reason": error.message,
            })
            slot.restart_timer = self.clock.at(
                self.clock.now() + decision.delay, lambda: self._restart(slot))
            mark("restart-decided")
        elif isinstance(decision, GiveUp):
            slot.status = PluginState.FAILED
            slot.last_error = f"gave up restarting: {decision.why}; last: {error.message}"
            log.error("plugin %s: %s", slot.plugin_id, slot.last_error)
            self.emit("plugin_failed", {
                "plugin": slot.plugin_id, "reason": slot.last_error,
            })
        else:
            slot.status = PluginState.UNLOADED if ending is Ending.CLEAN else PluginState.ERROR
            log.info("plugin %s: not restarted: %s", slot.plugin_id, decision.why)
        self._settled(slot.plugin_id)

    def _restart(self, slot: PluginSlot) -> None:
        """Bring the plugin back to its target state; a failed start counts as an ending."""
        mark("restart-begins")
        slot.restart_timer = None
        if self.slots.get(slot.plugin_id) is not slot or slot.status != PluginState.RESTARTING:
            self._settled(slot.plugin_id)  # the calls held for it: it is not coming back
            return  # unloaded or handled meanwhile

        def done(ok: bool, body: bytes) -> None:
            if ok:
                slot.restarts += 1
                log.info("plugin %s: restarted (%d so far)", slot.plugin_id, slot.restarts)
                self.emit("plugin_restarted", {
                    "plugin": slot.plugin_id, "restarts": slot.restarts,
                })
                if self.strategy is Strategy.REST_FOR_ONE:
                    self._restart_dependents(slot.plugin_id)
            else:
                failure = from_data(unpack_value(body))
                if failure.context.get("interrupted_by"):  # a stop took over: no failed start
                    log.info("plugin %s: %s", slot.plugin_id, failure.message)
                    return
                self._after_end(slot, Ending.START_FAILED, failure)

        self.lifecycle.recover(slot, done)

    def _restart_dependents(self, plugin_id: str) -> None:
        """rest_for_one: the plugins depending on ``plugin_id`` restart after it, in order."""
        for dependent in dependents_of(plugin_id, self.slots.graph()):
            slot = self.slots[dependent]
            if slot.target == PluginState.ACTIVE and slot.status == PluginState.ACTIVE:
                log.info("plugin %s: restarting after its dependency %s (rest_for_one)",
                         dependent, plugin_id)
                self.lifecycle.restart(
                    dependent, self._log_failure(dependent, "restart after a dependency"))

    @staticmethod
    def _log_failure(plugin_id: str, what: str) -> Responder:
        def logged(ok: bool, _body: bytes) -> None:
            if not ok:
                log.error("plugin %s: %s failed", plugin_id, what)
        return logged


def _ending(reason: ExitReason) -> Ending:
    """How the restart policy sees a worker's end."""
    if reason.cause_kind is not None:
        return Ending(reason.cause_kind)
    return Ending.CLEAN if reason.clean else Ending.CRASHED
