"""Which call each worker is in, and when it counts as hung in it (pure, the clock passed in).

A worker runs the calls sent to it one at a time, in the order they came, on the plugin's
one thread (lifecycle phases too). So of the calls sent to a worker and not yet answered by
it, the worker is in the OLDEST; the others wait behind it, in its socket. A call that
timed out while waiting behind a legitimately long one says nothing about the worker, and
must not get it killed.

The rule: a worker is hung when the oldest call it has not answered is a routed call (not
a phase: phases have their own timeouts and failure handling) and ``grace`` has passed
since that call's deadline, or since it became the oldest if that was later (it waited
behind another call past its deadline: its grace starts when the worker reaches it). A
reply to a call after its deadline still counts: the caller got DeadlineExceeded, but the
worker has left that call.

Re-entrancy: a handler that sends a message serves other calls while it waits for the
reply, nested in it. Those are answered before the call they are nested in, so they are
never the oldest; the worker counts as being in the outer call, whose deadline decides.
A hung nested call is therefore judged by the outer call's deadline (or by heartbeats).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple


class Routed(NamedTuple):
    """A routed call a worker was sent: what it is judged by (a tuple: one is made for
    every call routed, so it must be cheap). ``deadline`` is when the worker may be judged
    hung in it (plus the grace); it may be later than the caller's (router._call)."""

    address: str
    timeout: float
    deadline: float


@dataclass(frozen=True, slots=True)
class Hung:
    """A worker found hung: still in ``call`` (its ``cid``) ``grace`` after it was due."""

    owner: str
    cid: int
    call: Routed

    def cause(self) -> str:
        """Why its worker is killed, for ``last_exit`` and the events."""
        return f"call to {self.call.address} timed out after {self.call.timeout:g}s"


class _Queue:
    """One worker's unanswered calls, oldest first (None: a phase, never judged)."""

    __slots__ = ("calls", "reported", "since")

    def __init__(self, since: float) -> None:
        self.calls: OrderedDict[int, Routed | None] = OrderedDict()
        self.since = since  # when the oldest call became the oldest
        self.reported: int | None = None  # the cid already found hung (killed once)

    def oldest(self) -> tuple[int, Routed | None]:
        return next(iter(self.calls.items()))


class WorkerCalls:
    """Per worker (by owner), the calls sent to it and not yet answered by it, in order."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._queues: dict[str, _Queue] = {}

    def sent(self, owner: str, cid: int, now: float, call: Routed | None) -> None:
        """``cid`` was delivered to ``owner``'s worker (``call`` None: a lifecycle phase)."""
        queue = self._queues.get(owner)
        if queue is None:
            queue = self._queues[owner] = _Queue(now)
        elif not queue.calls:
            queue.since = now
        queue.calls[cid] = call

    def answered(self, owner: str, cid: int, now: float) -> float | None:
        """``owner``'s worker answered ``cid`` (in time or not). When that made a routed call
        the oldest, returns when to judge the worker in it: its deadline plus the grace, or
        a grace from now if that deadline has passed (it waited behind the one answered)."""
        queue = self._queues.get(owner)
        if queue is None or cid not in queue.calls:
            return None
        was_oldest = next(iter(queue.calls)) == cid
        del queue.calls[cid]
        if not was_oldest or not queue.calls:  # an idle worker's queue is kept for its next
            return None
        queue.since = now
        _, call = queue.oldest()
        # Judged at its own deadline if that is still to come (its expiry, which came while
        # it waited, set no judge: it was not the oldest), else a grace from now.
        return max(call.deadline, now) + self.grace if call is not None else None

    def expired(self, owner: str, cid: int) -> float | None:
        """``cid``'s deadline came: when to judge ``owner``'s worker, if it is in that call.
        (A call still waiting behind others is judged once it is the oldest: ``answered``.)"""
        queue = self._queues.get(owner)
        if queue is None or not queue.calls:
            return None
        oldest, call = queue.oldest()
        if oldest != cid or call is None:
            return None
        return max(call.deadline, queue.since) + self.grace

    def hung(self, owner: str, now: float) -> Hung | None:
        """``owner``'s worker if it is hung at ``now`` (reported once per call)."""
        queue = self._queues.get(owner)
        if queue is None or not queue.calls:
            return None
        cid, call = queue.oldest()
        if call is None or queue.reported == cid:
            return None
        if now < max(call.deadline, queue.since) + self.grace:
            return None
        queue.reported = cid
        return Hung(owner, cid, call)

    def waiting(self, owner: str) -> int:
        """How many calls ``owner``'s worker has not answered yet."""
        queue = self._queues.get(owner)
        return len(queue.calls) if queue is not None else 0

    def forget(self, owner: str) -> None:
        """``owner``'s worker is gone: nothing sent to it will be answered."""
        self._queues.pop(owner, None)

    def oldest(self, owner: str) -> int | None:
        """The call ``owner``'s worker is in (its cid), if any."""
        queue = self._queues.get(owner)
        return queue.oldest()[0] if queue is not None and queue.calls else None
