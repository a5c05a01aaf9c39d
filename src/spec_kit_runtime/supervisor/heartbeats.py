"""Hung-worker detection: heartbeats that only the plugin's own thread can answer.

The worker echoes a Heartbeat from the thread that runs the plugin's handlers, so a
handler stuck in a busy loop, a deadlock or a long sleep stops the echoes even though the
socket is fine. After ``heartbeat_misses`` unanswered in a row the worker is killed as
unresponsive, and its restart policy decides what follows. Plugins busy with a lifecycle
operation are skipped: phases have their own deadline.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING

from spec_kit_runtime.policy.exits import ExitKind
from spec_kit_runtime.wire.protocol import Heartbeat

from .slots import PluginSlot, SlotTable

if TYPE_CHECKING:
    from .ports import Clock, Outbox

log = logging.getLogger(__name__)


class HeartbeatMonitor:
    """One timer for all workers: a heartbeat each interval, a kill after too many misses."""

    def __init__(self, slots: SlotTable, clock: Clock, outbox: Outbox, interval: float,
                 misses: int) -> None:
        self.slots, self.clock, self.outbox = slots, clock, outbox
        self.interval, self.misses = interval, misses
        self._seq = itertools.count(1)

    def start(self) -> None:
        self.clock.at(self.clock.now() + self.interval, self._tick)

    def answered(self, slot: PluginSlot) -> None:
        if slot.worker is not None:
            slot.worker.missed_heartbeats = 0

    def _tick(self) -> None:
        try:
            self._beat()
        finally:  # a surprise for one worker must not stop the heartbeats of all
            self.start()

    def _beat(self) -> None:
        seq = next(self._seq)
        for slot in list(self.slots.values()):
            worker = slot.worker
            if worker is None or slot.identity is None or slot.busy is not None:
                continue
            if worker.missed_heartbeats >= self.misses:
                silence = self.misses * self.interval
                log.error("plugin %s: no heartbeat answered for %gs; killing it",
                          slot.plugin_id, silence)
                worker.kill_for(f"unresponsive: no heartbeat answered for {silence:g}s",
                                ExitKind.UNRESPONSIVE)
                continue
            worker.missed_heartbeats += 1
            self.outbox.to_worker(slot, Heartbeat(seq))
