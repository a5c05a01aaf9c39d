"""Routing sends to handlers, and replies back to whoever waits for them.

The router reads only routing headers: a message body is forwarded to the handler's
worker untouched, and a handler's reply body goes back to the sender untouched (hook
results are joined into one msgpack array without decoding them). Every call carries a
deadline, and an answer at or after it is late (dropped; the caller gets DeadlineExceeded);
a worker still in a call a grace period past its deadline is killed (``hung_handlers``); a
worker's death fails at once the calls it had begun, and those it had not begun wait for its
replacement when they wait for ready (``ready_waits``, ``spec_kit_worker.loop.call_progress``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from spec_kit_contracts import Event

from spec_kit_runtime.errors import (
    DeadlineExceeded,
    NoHandlerError,
    PluginNotActiveError,
    RoutingError,
    RuntimeFailure,
    ScopeError,
)
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.policy.call_stats import CallStats
from spec_kit_runtime.policy.deadlines import Deadlines
from spec_kit_runtime.policy.patterns import address_problem
from spec_kit_runtime.policy.put_back_budget import PutBackBudget
from spec_kit_runtime.policy.routing_table import Route, RoutingTable
from spec_kit_runtime.policy.scopes import SYSTEM_EVENTS
from spec_kit_runtime.wire.addressing import Delivery, delivery_of
from spec_kit_runtime.wire.codec import msgpack_array, pack_error, pack_message, pack_value
from spec_kit_runtime.wire.protocol import (
    Call,
    Readiness,
    Record,
    Reply,
    Send,
    timeout_problem,
)

from .hung_handlers import HungHandlers
from .ports import Clock, Outbox, Sent
from .ready_waits import Held, ReadyWaits, coming_back
from .replies import caller_key
from .slots import Responder, SlotTable

if TYPE_CHECKING:
    from spec_kit_runtime.plugins.config import RuntimeConfig

log = logging.getLogger(__name__)
CLIENT_SOURCE = "client"
_READINESS = frozenset(int(ready) for ready in Readiness)
_MIN_TIMEOUT = 0.001  # a held call's remaining deadline, however little is left
MAX_WAITING = 10_000  # calls sent to one worker and not answered yet: more are refused
# A call is put back this often at most (``Router.owner_gone``): taking it off its socket
# may be what kills each worker it is sent to (a frame too large for its memory).
MAX_PUT_BACKS = 2


class _Resend(NamedTuple):
    """What a call needs to be sent again, should its worker not begin it."""

    sender: str | None
    send: Send
    put_back: int  # how often it was put back already


@dataclass(slots=True)
class _Pending:
    """A call waiting for its Reply: who answers, who gets the answer, what it counts to."""

    owner: str
    what: str
    timeout: float
    respond: Responder
    stats: CallStats | None = None  # a plugin's figures, counted when the answer comes
    started: float = 0.0
    # kept (``PutBackBudget``) in case the worker dies before it begins it: the call may
    # then wait for the replacement
    waiting: _Resend | None = None
    deadline: float = 0.0

    def held(self, resend: _Resend, put_back: bool) -> Held:
        """It, to wait for its plugin to be ready again; ``put_back``: because its worker
        died before it began it (counted; such a call goes to that plugin only)."""
        times = resend.put_back + put_back
        return Held(resend.sender, resend.send, self.respond, self.deadline, self.timeout,
                    times, self.owner if times else None)


def _timed_out(pending: _Pending) -> bytes:
    """The answer to a call whose deadline came first: DeadlineExceeded (plugin, pattern,
    timeout)."""
    return pack_error(DeadlineExceeded(
        f"plugin '{pending.owner}' did not answer {pending.what} within {pending.timeout:g}s",
        plugin=pending.owner, what=pending.what, timeout=pending.timeout,
    ))


class Router:
    """Routes Send records and matches worker Replies to what waits for them."""

    def __init__(self, slots: SlotTable, clock: Clock, outbox: Outbox,
                 config: RuntimeConfig) -> None:
        self.slots, self.clock, self.outbox = slots, clock, outbox
        self.request_timeout = config.request_timeout
        self.table = RoutingTable()
        self.callers: dict[str, bytes] = {}  # caller key → client connection with handlers
        self.followers: set[str] = set()  # callers that only follow events (may be forgotten)
        self._pending: dict[int, _Pending] = {}
        self.deadlines = Deadlines()  # of the calls in _pending; the loop calls expire()
        # which call each worker is in; kills it when hung
        self.hung = HungHandlers(slots, clock, config.call_grace)
        self.wait_for_ready = config.wait_for_ready
        self.waits = ReadyWaits(slots, clock, config.ready_queue, self._deliver_held)
        self.kept = PutBackBudget()  # the bodies of the calls in _pending that may be put back
        self._next_cid = 1

    # -- handler owners: plugin workers, or callers' connections --------------------------

    def _deliverable(self, owner: str) -> bool:
        if owner in self.callers:
            return True
        slot = self.slots.get(owner)
        return slot is not None and slot.active

    def _deliver(self, owner: str, record: Record) -> Sent:
        identity = self.callers.get(owner)
        if identity is not None:
            sent = self.outbox.to_client(identity, record)
            if sent is Sent.GONE:  # else its queue is full: this one is lost, not it
                self.drop_caller(owner)
            return sent
        slot = self.slots.get(owner)
        return Sent.NO_WORKER if slot is None else self.outbox.to_worker(slot, record)

    def serve_caller(self, identity: bytes, sub_id: int, pattern: str, priority: int,
                     serving: bool) -> None:
        """A handler living in the client connection ``identity`` (``serving``: with a
        plugin's scope or the host's; else an event follower, which may be forgotten)."""
        owner = caller_key(identity)
        if not serving and owner not in self.callers:
            self.followers.add(owner)
        elif serving:
            self.followers.discard(owner)  # it serves handlers: keep it
        self.callers[owner] = identity
        self.table.add(owner, sub_id, pattern, priority, "message")

    def clear_routes(self, owner: str) -> None:
        """Forget every handler of ``owner``; a plugin on its way back to active is still
        their owner until it settles, for the calls that wait for it."""
        if coming_back(self.slots.get(owner)):
            self.waits.returning(owner, self.table.patterns_of(owner))
        self.table.clear_owner(owner)

    def drop_caller(self, owner: str) -> None:
        """Forget a caller's handlers (it disconnected)."""
        self.callers.pop(owner, None)
        self.followers.discard(owner)
        self.clear_routes(owner)
        self.owner_gone(owner, PluginNotActiveError(f"handler owner {owner} disconnected"))

    # -- calls to workers ------------------------------------------------------------------

    def call(self, owner: str, make: Callable[[int], Record], timeout: float,
             what: str, respond: Responder, stats: CallStats | None = None,
             address: str | None = None, judged_after: float | None = None,
             waiting: _Resend | None = None, told: float | None = None) -> int:
        """Send a record expecting a Reply; ``respond`` gets it, or an error at the deadline.

        ``stats``, when given, counts the call (its latency included) to a plugin's figures.
        ``address``: a routed call's, by which a plugin's worker still in it
        ``judged_after`` seconds (default: ``timeout``) and a grace later is judged hung
        (None: a lifecycle phase, never judged). ``waiting``: what sends again a call that
        may wait for ready, should the plugin's worker be gone already (its death not seen
        yet: a restart is likely to follow) or die before it begins the call (if ``kept``
        has room for its body).
        ``told``: the timeout its caller is told of at the deadline, if not ``timeout`` (a
        held call's own). Returns the call's id.
        """
        if owner not in self.callers and self.hung.calls.waiting(owner) >= MAX_WAITING:
            respond(False, pack_error(PluginNotActiveError(
                f"'{owner}' has {MAX_WAITING} calls waiting already: {what} refused",
                plugin=owner)))
            return 0
        cid = self._next_cid
        self._next_cid += 1
        now = self.clock.now()
        if owner in self.callers:
            waiting = None
        kept = waiting is not None and self.kept.take((waiting.sender, owner),
                                                      len(waiting.send.body))
        pending = _Pending(owner, what, told or timeout, respond, stats, now,
                           waiting if kept else None, now + timeout)
        self._pending[cid] = pending
        self.deadlines.add(cid, now + timeout)
        if stats is not None:
            stats.started()
        sent = self._deliver(owner, make(cid))
        if sent is Sent.OK:
            if owner not in self.callers:  # a plugin's worker: it is in this call, or queued
                self.hung.sent(owner, cid, now, address, timeout,
                               timeout if judged_after is None else judged_after)
        # Not delivered and still pending (drop_caller may have failed it already):
        elif cid in self._pending:
            self._take(cid)
            self.deadlines.remove(cid)
            if waiting is not None and sent is Sent.GONE:  # never delivered: not put back
                if stats is not None:
                    stats.withdrawn()
                self.waits.hold(owner, pending.held(waiting, put_back=False))
            else:
                self._answer(pending, False, pack_error(PluginNotActiveError(
                    f"'{owner}' cannot be reached for {what}{self._dying(owner)}",
                    plugin=owner)))
        return cid

    def _dying(self, owner: str) -> str:
        """Why ``owner``'s worker is being killed, when it is (its exit not seen yet)."""
        slot = self.slots.get(owner)
        cause = slot.worker.kill_cause if slot is not None and slot.worker else None
        return f": its worker is being killed ({cause})" if cause else ""

    def postpone(self, cid: int, timeout: float) -> None:
        """Give call ``cid``, if still in flight, ``timeout`` seconds from now."""
        if cid in self._pending:
            self.deadlines.add(cid, self.clock.now() + timeout)

    def replied(self, owner: str, reply: Reply) -> None:
        """A Reply from ``owner``: hand it to whoever waits for it."""
        self.hung.answered(owner, reply.cid)  # late or not, the worker has left that call
        pending = self._pending.get(reply.cid)
        if pending is None or pending.owner != owner:
            log.debug("%s: late or unknown reply %s dropped", owner, reply.cid)
            return
        self._take(reply.cid)
        if self.deadlines.settle(reply.cid, self.clock.now()):
            self._answer(pending, reply.ok, reply.body)
        else:  # read in the turn its deadline came (replies are read before deadlines)
            log.debug("%s: reply %s at or after its deadline dropped", owner, reply.cid)
            self._answer(pending, False, _timed_out(pending))

    def expire(self, now: float) -> None:
        """Answer every call whose deadline has passed with DeadlineExceeded."""
        for cid in self.deadlines.due(now):
            pending = self._take(cid)
            try:  # one failing answer must not strand the others, already off the deadlines
                self.hung.expired(pending.owner, cid)
                self._answer(pending, False, _timed_out(pending))
            except Exception:
                log.exception("internal error answering an expired call to %s", pending.owner)

    def owner_gone(self, owner: str, error: RuntimeFailure, began: int | None = None) -> None:
        """``owner`` is gone (a plugin's worker died, or a caller disconnected): answer
        the calls in flight to it with ``error``. But a plugin's worker said which it had
        begun (``began``: every cid up to it); those it had not never reached a handler, so
        the ones kept for it (``call``) wait for its replacement (``ready_waits``), ahead of
        any held since, and in their order. None: not known, all fail.

        Taking a call off its socket may be what killed the worker (a frame too large for
        its memory): put back every time, it would kill every replacement. So a call is put
        back ``MAX_PUT_BACKS`` times at most, wherever it is in the queue: a call that kills
        every worker it reaches costs that many restarts more, then fails with the calls
        still waiting behind it that were put back as often."""
        self.hung.gone(owner)
        failed: list[_Pending] = []
        unbegun: list[Held] = []
        for cid in [cid for cid, p in self._pending.items() if p.owner == owner]:  # cid order
            pending = self._take(cid)
            self.deadlines.remove(cid)
            if began is not None and cid > began and pending.waiting is not None:
                if pending.stats is not None:
                    pending.stats.withdrawn()
                unbegun.append(pending.held(pending.waiting, put_back=True))
            else:
                failed.append(pending)
        self.waits.put_back(owner, unbegun)  # first: an answer below may send to owner again
        for pending in failed:
            try:  # one failing answer must not strand the others, off the deadlines now
                self._answer(pending, False, pack_error(error))
            except Exception:
                log.exception("internal error answering a call to %s", owner)

    def _take(self, cid: int) -> _Pending:
        """Call ``cid`` is no longer pending: its entry, its kept body let go (the entry
        keeps it, for the caller to put back)."""
        pending = self._pending.pop(cid)
        if pending.waiting is not None:
            self.kept.give((pending.waiting.sender, pending.owner), len(pending.waiting.send.body))
        return pending

    def _answer(self, pending: _Pending, ok: bool, body: bytes) -> None:
        if pending.stats is not None:
            pending.stats.finished(self.clock.now() - pending.started, ok)
        pending.respond(ok, body)

    # -- sends -----------------------------------------------------------------------------

    def route(self, sender: str | None, send: Send, respond: Responder,
              allowed: float = 0.0, held: Held | None = None) -> None:
        """Deliver a send from plugin ``sender``, whose scope its door checked (None: a
        client, using ``send.as_plugin``). ``allowed``: the least time its handler is judged
        by (a held call's own timeout, counted from its delivery). ``held``: it waited for
        ready already: it is not held again if no handler is active now; put back, it goes
        to the plugin it was put back for only, and is put back ``MAX_PUT_BACKS`` times at
        most."""
        try:
            source = self._check_sender(sender, send)
            routes = self._active_routes(send.address)
        except PluginNotActiveError as exc:
            if held is not None or not self._wait_for_ready(sender, send, exc, respond):
                respond(False, pack_error(exc))
            return
        except RuntimeFailure as exc:
            respond(False, pack_error(exc))
            return
        timeout = send.timeout or self.request_timeout
        delivery = delivery_of(send.address)
        if delivery is Delivery.FAN_OUT:
            reached = sum(self._notify(route, send.address, source, send.body)
                          for route in routes)
            respond(True, pack_value(reached))
        elif delivery is Delivery.ALL_IN_ORDER:
            deadline = self.clock.now() + timeout
            self._call_in_order(list(routes), [], send, source, deadline, respond,
                                by_host=sender is None)
        else:
            route = routes[0]
            if held is not None and held.for_plugin is not None:  # put back: its plugin's only
                mine = [r for r in routes if r.owner == held.for_plugin]
                if not mine:
                    respond(False, pack_error(PluginNotActiveError(
                        f"'{held.for_plugin}' no longer handles '{send.address}': a call its "
                        "worker died before beginning goes to no other plugin",
                        plugin=held.for_plugin, address=send.address)))
                    return
                route = mine[0]
            # may wait should the worker be gone, or die before it begins the call
            times = held.put_back if held is not None else 0
            waiting = _Resend(sender, send, times) \
                if times < MAX_PUT_BACKS and self._waits(send) else None
            self._call(route, send.address, source, send.body, timeout, respond,
                       by_host=sender is None, waiting=waiting, allowed=allowed)

    def _check_sender(self, sender: str | None, send: Send) -> str:
        problem = address_problem(send.address)
        if problem:
            raise RoutingError(f"invalid address: {problem}")
        problem = timeout_problem(send.timeout)
        if problem:
            raise RoutingError(problem, address=send.address)
        if send.ready not in _READINESS:
            raise RoutingError(f"ready must be one of {sorted(_READINESS)}, not {send.ready}",
                               address=send.address)
        if sender is not None:  # its scope was checked at the worker door (an offence there)
            return sender
        if send.as_plugin:
            self.slots.require(send.as_plugin).scope.check_send(send.address)
            return send.as_plugin
        if send.address.startswith(SYSTEM_EVENTS[:-1]):
            raise ScopeError("only the supervisor emits event:system:*", address=send.address)
        return CLIENT_SOURCE

    def _active_routes(self, address: str) -> tuple[Route, ...]:
        routes = self.table.routes(address)
        active = tuple(r for r in routes if self._deliverable(r.owner))
        if active or delivery_of(address) is not Delivery.ONE:
            return active
        owners = sorted({r.owner for r in routes} | self._namespace_owner(address)
                        | self.waits.returning_owners(address))
        if owners:
            states = ", ".join(f"'{p}' is {self._state(p)}" for p in owners)
            raise PluginNotActiveError(f"no active handler for '{address}': {states}",
                                       address=address, plugins=owners)
        raise NoHandlerError(f"no plugin handles '{address}'", address=address)

    def _wait_for_ready(self, sender: str | None, send: Send, refusal: PluginNotActiveError,
                        respond: Responder) -> bool:
        """Hold a call whose plugin is starting or restarting (``ready_waits``), unless it
        asked to fail fast; False when it is not to wait."""
        if not self._waits(send) or delivery_of(send.address) is not Delivery.ONE:
            return False
        timeout = send.timeout or self.request_timeout
        return self.waits.wait(refusal.context.get("plugins") or (), Held(
            sender, send, respond, self.clock.now() + timeout, timeout))

    def _waits(self, send: Send) -> bool:
        """Whether ``send`` waits for a plugin that is not ready (its own choice, else the
        supervisor's default)."""
        if send.ready == Readiness.DEFAULT:
            return self.wait_for_ready
        return send.ready == Readiness.WAIT

    def _deliver_held(self, held: Held, remaining: float) -> None:
        """A held call, its plugin ready: routed again with what is left of its deadline."""
        mark("held-sent")
        send = dataclasses.replace(held.send, timeout=max(remaining, _MIN_TIMEOUT))
        # Judged hung by the time its caller allowed, counted from now: the wait was not
        # the handler's.
        self.route(held.sender, send, held.respond, allowed=held.timeout, held=held)

    def settled(self, plugin_id: str) -> None:
        """An operation on ``plugin_id`` ended: the calls waiting for it go, or fail."""
        self.waits.settled(plugin_id)

    def _namespace_owner(self, address: str) -> set[str]:
        parts = address.split(":")
        if len(parts) >= 3 and parts[1] in self.slots:
            return {parts[1]}
        return set()

    def _state(self, plugin_id: str) -> str:
        slot = self.slots.get(plugin_id)
        if slot is None:
            return "not loaded"
        return f"{slot.status} ({slot.last_exit})" if slot.last_exit else slot.status

    def _call(self, route: Route, address: str, source: str, body: bytes, timeout: float,
              respond: Responder, by_host: bool,
              waiting: _Resend | None = None, allowed: float = 0.0) -> None:
        slot = self.slots.get(route.owner)  # None: a caller's handler
        # A plugin may give its calls any timeout, down to a millisecond: a handler it calls
        # is judged hung no sooner than the operator's request_timeout, or one plugin could
        # get another killed (and, kill after kill, failed). The host's deadline is its own,
        # whatever scope it sends with (``by_host``: the send came from a client).
        judged = max(timeout if by_host else max(timeout, self.request_timeout), allowed)
        if waiting is not None and waiting.sender == route.owner:
            waiting = None  # a call to itself: its sender is the worker that would be gone
        self.call(route.owner, lambda cid: Call(cid, route.sub_id, address, source, body),
                  timeout, f"'{address}'", respond, slot.calls if slot is not None else None,
                  address, judged, waiting, max(timeout, allowed))

    def _call_in_order(self, routes: list[Route], results: list[bytes], send: Send,
                       source: str, deadline: float, respond: Responder,
                       by_host: bool) -> None:
        while routes and not self._deliverable(routes[0].owner):
            routes.pop(0)  # went away while an earlier hook handler ran
        if not routes:
            respond(True, msgpack_array(results))
            return
        route = routes.pop(0)

        def answered(ok: bool, body: bytes) -> None:
            if not ok:
                respond(False, body)
                return
            results.append(body)
            self._call_in_order(routes, results, send, source, deadline, respond, by_host)

        remaining = deadline - self.clock.now()
        if remaining <= 0:  # the earlier handlers used it all: the chain is late, not 1 ms on
            respond(False, pack_error(DeadlineExceeded(
                f"the handlers of '{send.address}' did not all answer within the deadline",
                address=send.address)))
            return
        self._call(route, send.address, source, send.body, remaining, answered, by_host)

    def _notify(self, route: Route, address: str, source: str, body: bytes) -> bool:
        call = Call(0, route.sub_id, address, source, body)
        delivered = self._deliver(route.owner, call) is Sent.OK
        slot = self.slots.get(route.owner)
        if delivered and slot is not None:
            slot.calls.notified()
        return delivered

    # -- supervisor events -----------------------------------------------------------------

    def emit_system(self, name: str, data: dict[str, object]) -> None:
        """Publish ``event:system:{name}`` to every active subscriber; with none, nothing is
        built (a restart makes four such events: 0.5 ms of its path, built for nobody)."""
        address = f"event:system:{name}"
        routes = self._active_routes(address)
        if not routes:
            return
        body = pack_message(Event(event_name=f"system:{name}", event_data=dict(data),
                                  source="system"))
        for route in routes:
            self._notify(route, address, "system", body)
