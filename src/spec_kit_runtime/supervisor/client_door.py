"""The supervisor's door for clients: who may come in, and where what they send goes.

A client proves the token in the runtime directory with a ClientHello before anything else
it sends is taken; the table of authenticated connections is bounded (see ``_admit``).
There are two doors: the clients socket (messages and control operations) and the control
socket, which takes control operations only and is read first on every turn of the loop,
so that status and health never wait behind message traffic (Jupyter's control channel).
Kept apart from ``loop``, which only reads frames off the socket and hands
them here.
"""

from __future__ import annotations

import hmac
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from spec_kit_runtime.errors import AuthenticationError, ProtocolError, RuntimeFailure
from spec_kit_runtime.policy.offences import Offences
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import ClientHello, Control, Record, Reply, Send

from .replies import caller_key, replier

if TYPE_CHECKING:
    from .ports import Sent
    from .router import Router
    from .slots import Responder

log = logging.getLogger(__name__)
MAX_CLIENTS = 4096  # authenticated client connections remembered
_DATA_PATH_OPS = frozenset({"subscribe", "unsubscribe"})  # handlers served on the clients socket


class ClientDoor:
    """Authenticates client connections and dispatches their records; built by the loop."""

    def __init__(self, token: bytes, send: Callable[[bytes, Record], Sent], router: Router,
                 control: Callable[[bytes, Control, Responder], None],
                 welcome: dict[str, object], control_only: bool = False) -> None:
        """``control``: runs a control operation; ``welcome``: what an authenticated
        client is told (its limits)."""
        self.token = token
        self.router, self._control, self._welcome = router, control, welcome
        self._send = send
        self.control_only = control_only
        self._peers: OrderedDict[bytes, None] = OrderedDict()  # least recent first
        self.offences = Offences()

    def received(self, identity: bytes, record: Record) -> None:
        """A record from client connection ``identity``."""
        if isinstance(record, ClientHello):
            ok = hmac.compare_digest(record.token, self.token)
            if not ok:
                refused = AuthenticationError("wrong client token")
                self._send(identity, Reply(0, False, codec.pack_error(refused)))
                raise refused
            self._admit(identity)
            self._send(identity, Reply(0, True, codec.pack_value(self._welcome)))
            return
        cid = getattr(record, "cid", None)
        if identity not in self._peers:
            self._refuse(identity, cid, AuthenticationError(
                "say ClientHello with the token first", reason="unauthenticated"))
        self._peers.move_to_end(identity)
        if self.control_only and not (isinstance(record, Control)
                                      and record.op not in _DATA_PATH_OPS):
            self._refuse(identity, cid, ProtocolError(
                "the control socket takes control operations only (not sends, "
                "subscriptions or handler replies): use the clients socket"))
        if isinstance(record, Send):
            self.router.route(None, record, replier(self._send, identity, record))
        elif isinstance(record, Control):
            self._control(identity, record, replier(self._send, identity, record))
        elif isinstance(record, Reply):  # from a caller's handler
            self.router.replied(caller_key(identity), record)
        else:
            raise ProtocolError(f"a client does not send {type(record).__name__}")

    def _refuse(self, identity: bytes, cid: object, error: RuntimeFailure) -> NoReturn:
        """Answer a record that has a cid with ``error``, then raise it (an offence)."""
        if isinstance(cid, int):
            self._send(identity, Reply(cid, False, codec.pack_error(error)))
        raise error

    def describe(self, identity: bytes) -> str:
        """Who is behind a connection, for the log."""
        where = "control" if self.control_only else "client"
        known = "authenticated" if identity in self._peers else "unauthenticated"
        return f"an {known} {where} connection"

    def banned(self, identity: bytes) -> None:
        """A connection banned for its offences: its authentication and handlers go."""
        self._peers.pop(identity, None)
        if caller_key(identity) in self.router.callers:
            self.router.drop_caller(caller_key(identity))

    def _admit(self, identity: bytes) -> None:
        """Remember an authenticated client; forget the least recent beyond MAX_CLIENTS.

        ZeroMQ does not say when a client goes away, so the table is bounded instead. A
        forgotten client is asked to authenticate again (the client library does so); a
        connection serving caller handlers is never forgotten, one that only follows events
        is, and its subscription with it.
        """
        self._peers[identity] = None
        self._peers.move_to_end(identity)
        if len(self._peers) <= MAX_CLIENTS:
            return
        router = self.router
        serving = {peer for key, peer in router.callers.items() if key not in router.followers}
        for old in list(self._peers):
            if len(self._peers) <= MAX_CLIENTS:
                break
            if old not in serving:
                del self._peers[old]
                if caller_key(old) in router.followers:  # a follower forgotten: unsubscribed
                    router.drop_caller(caller_key(old))
