"""Ending a handler that outlives its call: the worker still in it a grace period after the
call's deadline is killed, whole tree, and its restart policy replaces it.

Which call a worker is in, and when it counts as hung, is decided by ``worker_calls``
(pure). This is its edge on the supervisor's loop: the router tells it of every call
delivered to a worker, every reply and every deadline that passes; when a worker may turn
out hung it sets a timer, and when it does, it kills the worker for that reason
(``WorkerProcess.kill_for``: ``last_exit``, ``plugin_crashed`` and the restart policy take
it from there). Handlers in a caller's process are never judged here: only timed out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from spec_kit_runtime.policy.exits import ExitKind
from spec_kit_runtime.policy.worker_calls import Routed, WorkerCalls

if TYPE_CHECKING:
    from .ports import Clock
    from .slots import SlotTable

log = logging.getLogger(__name__)


class HungHandlers:
    """Feeds the router's calls to ``WorkerCalls``; kills the workers it finds hung."""

    def __init__(self, slots: SlotTable, clock: Clock, grace: float) -> None:
        self.slots, self.clock = slots, clock
        self.calls = WorkerCalls(grace)

    def sent(self, owner: str, cid: int, now: float, address: str | None,
             timeout: float, judged_after: float) -> None:
        """Call ``cid`` was delivered to plugin ``owner``'s worker at ``now`` (``address``
        None: a lifecycle phase, which occupies the worker but is never judged); it is due,
        for judging the worker, ``judged_after`` seconds from now."""
        self.calls.sent(owner, cid, now, None if address is None
                        else Routed(address, timeout, now + judged_after))

    def answered(self, owner: str, cid: int) -> None:
        """``owner``'s worker replied to ``cid``, in time or late."""
        self._judge_at(owner, self.calls.answered(owner, cid, self.clock.now()))

    def expired(self, owner: str, cid: int) -> None:
        """The deadline of call ``cid`` to ``owner`` passed (its caller was told)."""
        self._judge_at(owner, self.calls.expired(owner, cid))

    def gone(self, owner: str) -> None:
        """``owner``'s worker ended (or the owner is a caller that went away)."""
        self.calls.forget(owner)

    def _judge_at(self, owner: str, when: float | None) -> None:
        if when is not None:
            self.clock.at(when, lambda: self._judge(owner))

    def _judge(self, owner: str) -> None:
        hung = self.calls.hung(owner, self.clock.now())
        if hung is None:
            return
        slot = self.slots.get(owner)
        if slot is None or slot.worker is None:
            return
        log.error("plugin %s: %s and its worker is still in it %gs later; killing it",
                  owner, hung.cause(), self.calls.grace)
        slot.worker.kill_for(hung.cause(), ExitKind.UNRESPONSIVE)
