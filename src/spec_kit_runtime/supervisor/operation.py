"""One lifecycle operation in progress on a plugin: its steps, run in turn, and its end.

An operation (load, activate, stop, restart, recover, …) is a list of steps; each starts
something and calls ``proceed`` when it is done, or fails the operation. It finishes
exactly once: it sets the plugin's target state, announces ``plugin_active`` or
``plugin_stopped``, answers its caller and lets the next queued operation of the plugin
start (``Lifecycle``). What the worker's Hello and exit mean to the step under way is
kept here (``connect_timer``, ``on_exit``, ``exit_budget``; see ``worker_steps``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from spec_kit_runtime.errors import RuntimeFailure
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.codec import pack_error, pack_value

from .slots import PluginSlot, Responder
from .worker_steps import OnExit, StopBudget

if TYPE_CHECKING:
    from spec_kit_runtime.policy.timers import Timer

    from .lifecycle import Lifecycle

log = logging.getLogger(__name__)
Step = Callable[["Operation"], None]
"""One step of an operation: starts something, then calls ``op.proceed()`` (or fails it)."""
# The state each operation leaves a plugin in, restored after a crash ("recover" keeps it).
_TARGETS = {"load": PluginState.INITIALIZED, "activate": PluginState.ACTIVE,
            "deactivate": PluginState.INITIALIZED, "unload": None, "stop": None,
            "start": PluginState.ACTIVE, "restart": PluginState.ACTIVE}


class Operation:
    """One lifecycle operation in progress on a slot; finishes exactly once."""

    def __init__(self, lifecycle: Lifecycle, slot: PluginSlot, name: str,
                 steps: list[Step], done: Responder) -> None:
        self.lifecycle, self.slot, self.name = lifecycle, slot, name
        self._steps: Iterator[Step] = iter(steps)
        self._done = done
        self.finished = False
        self.spawned = False  # it has asked for a worker (worker_steps.spawn)
        self.stop_budget: StopBudget | None = None  # while it stops a worker
        # What the worker's Hello and its exit mean to the step under way (worker_steps):
        self.connect_timer: Timer | None = None  # set while waiting for the Hello
        self.on_exit = OnExit.FAIL
        self.exit_budget: StopBudget | None = None  # cancelled at the exit

    def proceed(self) -> None:
        if self.finished:
            return
        step = next(self._steps, None)
        if step is None:
            loading = self.name in STARTING
            self.slot.loaded = self.slot.loaded or loading
            self._finish(True, pack_value(self.slot.answer(with_facts=loading)))
            return
        try:
            step(self)
        except RuntimeFailure as exc:
            self.fail(exc)
        except OSError as exc:
            self.cannot(exc)
        except Exception as exc:  # a bug of ours: fail this operation, never wedge the slot
            log.exception("plugin %s: internal error in %s", self.slot.plugin_id, self.name)
            self.fail(RuntimeFailure(f"internal error in {self.name} of plugin "
                                     f"'{self.slot.plugin_id}': {type(exc).__name__}: {exc}"
                                     [:500], plugin=self.slot.plugin_id))

    def cannot(self, error: OSError) -> None:
        """Fail for an operating system error (the worker could not be started, say)."""
        self.fail(RuntimeFailure(f"cannot {self.name} plugin '{self.slot.plugin_id}': {error}",
                                 plugin=self.slot.plugin_id))

    def fail(self, error: RuntimeFailure) -> None:
        if self.finished:
            return
        self.slot.last_error = error.message
        log.error("plugin %s: %s failed: %s", self.slot.plugin_id, self.name, error.message)
        self.lifecycle.after_failure(self)
        self._finish(False, pack_error(error))

    def _finish(self, ok: bool, body: bytes) -> None:
        self.finished = True
        if self.stop_budget is not None:  # failed while stopping: no signals after it
            self.stop_budget.cancel()
        if ok and self.name in _TARGETS:
            self.slot.target = _TARGETS[self.name]
        if ok:
            self._announce()
        self.slot.busy = None
        # The connect timer is left to fire: it abandons the spawn of an interrupted start.
        self.connect_timer, self.on_exit, self.exit_budget = None, OnExit.FAIL, None
        self.lifecycle.ended(self)  # before its caller hears: it may start the next one
        self._done(ok, body)
        # The calls waiting for the plugin: sent before a queued operation (a deactivate,
        # say) reaches an active plugin; else judged once the next one has begun (an
        # activate asked after a load keeps them waiting).
        if self.slot.active:
            self.lifecycle.calls.settled(self.slot.plugin_id)
            self.lifecycle.start_next(self.slot)
        else:
            self.lifecycle.start_next(self.slot)
            self.lifecycle.calls.settled(self.slot.plugin_id)

    def _announce(self) -> None:
        """The lifecycle events a finished operation makes (``event:system:*``)."""
        slot, emit = self.slot, self.lifecycle.emit
        if self.name in ACTIVATING and slot.status == PluginState.ACTIVE:
            mark("active")
            emit("plugin_active", {"plugin": slot.plugin_id,
                                   "pid": slot.worker.pid if slot.worker else None})
        elif self.name in ("stop", "unload"):
            emit("plugin_stopped", {"plugin": slot.plugin_id, "how": self.name,
                                    "exit": slot.last_exit})


ACTIVATING = frozenset({"activate", "start", "restart", "recover"})
STARTING = frozenset({"load", "start", "restart", "recover"})  # a new worker, new facts
# A stop does not wait for these to finish (they may wait on the worker up to phase_timeout
# or start_timeout): it interrupts them, so that its own bound holds.
STOPS = frozenset({"stop", "unload", "restart"})
INTERRUPTIBLE = STARTING | {"activate", "deactivate"}
