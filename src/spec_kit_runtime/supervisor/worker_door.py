"""The supervisor's door for workers: which connection is which plugin, and what it may send.

A worker connection counts as its plugin only after a Hello proving the per-spawn secret
(single use, and for the pid the supervisor spawned). After that its replies, sends,
heartbeats, subscriptions and host service calls are taken, subscriptions only within
the plugin's scope (and namespace) and up to MAX_SUBSCRIPTIONS, service calls for that
plugin only; a send or subscription its own worker should have refused is an offence. Kept
apart from ``loop``, which only reads frames off the socket and hands them here.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from spec_kit_runtime.errors import AuthenticationError, ProtocolError, RoutingError, ScopeError
from spec_kit_runtime.linux.hardening import layers
from spec_kit_runtime.policy.offences import Offences
from spec_kit_runtime.policy.patterns import pattern_problem
from spec_kit_runtime.wire.codec import pack_error
from spec_kit_runtime.wire.protocol import (
    Heartbeat,
    Hello,
    Record,
    Reply,
    Send,
    ServiceCall,
    Subscribe,
    Unsubscribe,
)

from .replies import replier
from .slots import PluginSlot, Responder, SlotTable

if TYPE_CHECKING:
    from .ports import Sent
    from .router import Router

log = logging.getLogger(__name__)
MAX_SUBSCRIPTIONS = 1000  # per plugin: each one costs every uncached route lookup


class WorkerDoor:
    """Authenticates worker connections and dispatches their records; built by the loop.

    ``send`` sends to a worker connection by its identity: a reply goes back to the
    connection that asked, even if the plugin has another worker by then.
    """

    def __init__(self, send: Callable[[bytes, Record], Sent], slots: SlotTable, router: Router,
                 serve: Callable[[PluginSlot, ServiceCall, Responder], None],
                 heartbeat: Callable[[PluginSlot], None],
                 connected: Callable[[PluginSlot], None]) -> None:
        """``serve``: runs a host service call; ``heartbeat``: a worker answered one;
        ``connected``: a worker proved its secret in its Hello."""
        self._send, self.slots, self.router = send, slots, router
        self._serve, self._heartbeat, self._connected = serve, heartbeat, connected
        self._peers: dict[bytes, str] = {}  # connection identity → plugin id
        self._early: dict[str, tuple[bytes, Hello]] = {}  # plugin id → its Hello, too early
        self.offences = Offences()

    def received(self, identity: bytes, record: Record) -> None:
        """A record from worker connection ``identity``."""
        plugin_id = self._peers.get(identity)
        if plugin_id is None:
            if not isinstance(record, Hello):
                raise AuthenticationError(f"a {type(record).__name__} before the worker's Hello")
            self._hello(identity, record)
            return
        slot = self.slots.get(plugin_id)
        if slot is None or slot.identity != identity:
            return
        if isinstance(record, Reply):
            self.router.replied(plugin_id, record)
        elif isinstance(record, Send):
            respond = replier(self._send, identity, record)
            try:  # the worker checked this already: a refusal here means it was bypassed
                slot.scope.check_send(record.address)
            except ScopeError as exc:
                respond(False, pack_error(exc))
                raise  # an offence
            self.router.route(plugin_id, record, respond)
        elif isinstance(record, Heartbeat):
            self._heartbeat(slot)
        elif isinstance(record, Subscribe):
            self._subscribe(slot, record)
        elif isinstance(record, Unsubscribe):
            self.router.table.remove(plugin_id, record.sub_id)
        elif isinstance(record, ServiceCall):  # for this connection's plugin, proven above
            self._serve(slot, record, replier(self._send, identity, record))
        else:
            raise ProtocolError(f"a worker does not send {type(record).__name__}")

    def forget(self, identity: bytes) -> None:
        """The worker behind connection ``identity`` is gone."""
        self._peers.pop(identity, None)
        self.offences.forget(identity)

    def describe(self, identity: bytes) -> str:
        """Who is behind a connection, for the log."""
        plugin_id = self._peers.get(identity)
        return f"plugin {plugin_id}'s worker" if plugin_id else "an unidentified worker connection"

    def banned(self, identity: bytes) -> None:
        """A connection banned for its offences: a plugin's worker is killed (and restarted
        by its policy), since ZeroMQ cannot close one connection of a ROUTER."""
        plugin_id = self._peers.get(identity)
        slot = self.slots.get(plugin_id) if plugin_id else None
        if slot is not None and slot.worker is not None and slot.identity == identity:
            slot.worker.kill_for("protocol violation: it kept sending records it may not send",
                                 None)

    def spawned(self, slot: PluginSlot) -> None:
        """The worker of ``slot`` has started: take its Hello now if it came first."""
        early = self._early.pop(slot.plugin_id, None)
        if early is not None:
            try:
                self._hello(*early)
            except AuthenticationError as exc:
                log.warning("%s", exc.message)

    def drop_early(self, plugin_id: str) -> None:
        """Forget a Hello kept for a spawn that failed or was given up on."""
        self._early.pop(plugin_id, None)

    def _hello(self, identity: bytes, hello: Hello) -> None:
        slot = self.slots.get(hello.plugin_id)
        expected = slot.secret if slot is not None else None
        if (slot is not None and expected is not None and slot.worker is None
                and hmac.compare_digest(expected, hello.secret)):
            # Before the fork server's answer was read (both came in one poll): kept until
            # spawned(), which checks the pid too. One per plugin, and only with its secret.
            self._early[slot.plugin_id] = (identity, hello)
            return
        if (slot is None or expected is None or slot.worker is None
                or slot.worker.pid != hello.pid
                or not hmac.compare_digest(expected, hello.secret)):
            raise AuthenticationError(f"worker hello for '{hello.plugin_id}' (pid {hello.pid}) "
                                      "refused: unknown plugin, pid or secret")
        slot.secret = None  # single use: a replayed Hello is refused
        slot.identity = slot.worker.identity = identity
        slot.worker.hardening = layers(hello.pid, slot.info.sandbox_enabled,
                                       bool(slot.worker.cgroups), slot.worker.confinement,
                                       hello.body)
        self._peers[identity] = slot.plugin_id
        self._connected(slot)

    def _subscribe(self, slot: PluginSlot, sub: Subscribe) -> None:
        table = self.router.table
        if table.count(slot.plugin_id) >= MAX_SUBSCRIPTIONS:
            log.warning("plugin %s: subscription to %r refused: more than %d", slot.plugin_id,
                        sub.pattern, MAX_SUBSCRIPTIONS)
            return
        problem = pattern_problem(sub.pattern)
        if problem:
            raise RoutingError(f"plugin '{slot.plugin_id}' subscribed to an invalid pattern: "
                               f"{problem}", plugin=slot.plugin_id)
        # The worker checked the scope, the namespaces and the priority already: a refusal
        # here means its checks were bypassed, which counts as an offence (raised to the
        # door's caller).
        slot.scope.check_subscribe(sub.pattern)
        if sub.priority < 0:  # the host's band: a plugin may not outrank its handlers
            raise ScopeError(f"plugin '{slot.plugin_id}' may not subscribe with priority "
                             f"{sub.priority}: below 0", plugin=slot.plugin_id)
        table.add(slot.plugin_id, sub.sub_id, sub.pattern, sub.priority, sub.kind)
