"""Calls that wait for a plugin to be ready: held while it starts or restarts, in order.

gRPC's ``wait_for_ready`` for a restarting worker. A call to a plugin whose worker is
being started or restarted (its restart's backoff included) would otherwise fail at once,
as if its caller had crashed the plugin. It is held here instead, in a bounded queue per
plugin, and goes to the plugin when an operation leaves it active (``settled``), with what
is left of its deadline. It fails at its deadline (saying what the plugin was doing and
why), at once when the plugin will not be active (failed, stopped, unloaded, or settled in
another state), or at once when the queue is full. Calls in flight when a worker dies are
never held or re-sent if it had begun them: the handler may have had effects; they fail
with its death. Those it had not begun yet (behind the one it was in, or on their way to
it) never reached a handler: they are put back here, ahead of the calls held since
(``put_back``; which calls it began: ``spec_kit_worker.loop.call_progress``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from spec_kit_runtime.errors import DeadlineExceeded, PluginNotActiveError
from spec_kit_runtime.policy.patterns import matches
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.policy.timers import Timer
from spec_kit_runtime.wire.codec import pack_error
from spec_kit_runtime.wire.protocol import Send

from .operation import STARTING
from .ports import Clock
from .slots import PluginSlot, Responder, SlotTable

log = logging.getLogger(__name__)
# Operations that leave a plugin active, or on its way there (a load is followed by the
# activate its caller asks for next: the calls are settled only after that is queued).
_ON_ITS_WAY = STARTING | {"activate"}


def coming_back(slot: PluginSlot | None) -> bool:
    """Whether the plugin is starting or restarting to active: a call to it may wait."""
    if slot is None:
        return False
    if slot.busy is not None:
        return slot.busy in _ON_ITS_WAY and (
            slot.busy != "recover" or slot.target == PluginState.ACTIVE)
    return (slot.restart_timer is not None and slot.status == PluginState.RESTARTING
            and slot.target == PluginState.ACTIVE)


@dataclass(slots=True, eq=False)
class Held:
    """A call waiting for its plugin: who sent it, what, whom to answer, and by when."""

    sender: str | None  # a plugin, or None: a client
    send: Send
    respond: Responder
    deadline: float
    timeout: float
    put_back: int = 0  # how often a worker it was sent to died before it began it
    for_plugin: str | None = None  # put back: it goes to this plugin only
    timer: Timer | None = field(default=None, repr=False)


class ReadyWaits:
    """The calls held for each plugin; ``deliver`` routes one again once its plugin is."""

    def __init__(self, slots: SlotTable, clock: Clock, limit: int,
                 deliver: Callable[[Held, float], None]) -> None:
        """``limit``: calls held for one plugin at most; ``deliver(held, remaining)``:
        routes a held call again, with ``remaining`` seconds of its deadline."""
        self.slots, self.clock, self.limit, self._deliver = slots, clock, limit, deliver
        self._held: dict[str, deque[Held]] = {}
        # plugin → the patterns of its handlers, dropped as it restarts: it still stands for
        # them (a shared address, generator: say, has no owner in its name) until it settles
        self._returning: dict[str, tuple[str, ...]] = {}

    def returning(self, plugin_id: str, patterns: Iterable[str]) -> None:
        """``plugin_id``, on its way back to active, has dropped its handlers of ``patterns``."""
        self._returning[plugin_id] = tuple(patterns)

    def returning_owners(self, address: str) -> set[str]:
        """The plugins on their way back whose dropped handlers matched ``address``."""
        return {owner for owner, patterns in self._returning.items()
                if any(matches(address, pattern) for pattern in patterns)}

    def count(self, plugin_id: str) -> int:
        """How many calls wait for ``plugin_id``."""
        return len(self._held.get(plugin_id, ()))

    def waits_on(self, plugin_id: str, other: str) -> bool:
        """Whether ``plugin_id`` has a call held for ``other`` (a wait the other way would
        close a cycle)."""
        return any(held.sender == plugin_id for held in self._held.get(other, ()))

    def wait(self, owners: Iterable[str], held: Held) -> bool:
        """Hold ``held`` for the first of ``owners`` that is coming back; False when none is,
        or when the call would wait for its own sender (whose start may be waiting on it)."""
        owner = next((p for p in owners if coming_back(self.slots.get(p))), None)
        sender = held.sender
        if owner is None or (sender is not None and (sender == owner
                                                    or self.waits_on(owner, sender))):
            return False
        self.hold(owner, held)
        return True

    def hold(self, plugin_id: str, held: Held) -> None:
        """Hold ``held`` for ``plugin_id``, or refuse it at once: its queue is full."""
        queue = self._held.setdefault(plugin_id, deque())
        if len(queue) >= self.limit:
            held.respond(False, pack_error(PluginNotActiveError(
                f"plugin '{plugin_id}' is {self._doing(plugin_id)} and {self.limit} calls wait "
                f"for it already (runtime.ready_queue): '{held.send.address}' refused",
                plugin=plugin_id, address=held.send.address)))
            return
        self._arm(plugin_id, held)
        queue.append(held)

    def put_back(self, plugin_id: str, calls: list[Held]) -> None:
        """Hold ``calls``, sent to ``plugin_id``'s worker, which died before it began them,
        ahead of the calls held since (they came first), in their order; never refused for
        a full queue: they were taken already (``ready_queue`` bounds new calls only, and
        the router's ``PutBackBudget`` these). The death's outcome (a restart, or not)
        settles them."""
        if not calls:
            return
        queue = self._held.setdefault(plugin_id, deque())
        for held in reversed(calls):
            self._arm(plugin_id, held)
            queue.appendleft(held)

    def _arm(self, plugin_id: str, held: Held) -> None:
        """Fail ``held`` at its deadline if it still waits for ``plugin_id`` then."""
        held.timer = self.clock.at(held.deadline, lambda: self._expire(plugin_id, held))

    def settled(self, plugin_id: str) -> None:
        """An operation on ``plugin_id`` ended (or its restart was decided): the calls held
        for it go to it if it is active, fail if it will not be, else wait on."""
        slot = self.slots.get(plugin_id)
        if not coming_back(slot):
            self._returning.pop(plugin_id, None)
        queue = self._held.get(plugin_id)
        if not queue:
            return
        if slot is not None and slot.active:
            del self._held[plugin_id]
            now = self.clock.now()
            for held in queue:  # in the order they came
                if held.timer is not None:
                    held.timer.cancel()
                    held.timer = None
                if held.deadline <= now:  # its timer is due this turn: it is late, not sent
                    self._late(plugin_id, held)
                    continue
                try:  # one failing delivery must not strand the others, off the queue now
                    self._deliver(held, held.deadline - now)
                except Exception:
                    log.exception("internal error delivering a held call to %s", plugin_id)
        elif not coming_back(slot):
            del self._held[plugin_id]
            error = PluginNotActiveError(
                f"plugin '{plugin_id}' will not become active: {self._doing(plugin_id)}",
                plugin=plugin_id)
            for held in queue:
                if held.timer is not None:
                    held.timer.cancel()
                held.respond(False, pack_error(error))

    def _expire(self, plugin_id: str, held: Held) -> None:
        queue = self._held.get(plugin_id)
        if queue is None or held not in queue:
            return
        queue.remove(held)
        if not queue:
            del self._held[plugin_id]
        self._late(plugin_id, held)

    def _late(self, plugin_id: str, held: Held) -> None:
        held.respond(False, pack_error(DeadlineExceeded(
            f"plugin '{plugin_id}' did not become active within {held.timeout:g}s for "
            f"'{held.send.address}': it is {self._doing(plugin_id)}",
            plugin=plugin_id, address=held.send.address, timeout=held.timeout)))

    def _doing(self, plugin_id: str) -> str:
        """What the plugin is doing, and why, for an error."""
        slot = self.slots.get(plugin_id)
        if slot is None:
            return "unloaded"
        what = f"{slot.status}, {slot.busy} under way" if slot.busy else str(slot.status)
        if slot.status == PluginState.RESTARTING and slot.last_error:
            what += f" after: {slot.last_error}"
        elif slot.last_exit:
            what += f" (last exit: {slot.last_exit})"
        return what
