"""Records out of the supervisor, onto its ROUTER sockets: never blocking, never raising.

Every send says what became of it (``ports.Sent``): a peer that is gone (ROUTER_MANDATORY)
is told apart from one whose queue is full, so the router forgets a caller only when its
connection is really gone. A record too big for the peer's frame limit is not sent; a
Reply that is (a hook's joined results, say) goes as the error instead, so its caller is
answered.
"""

from __future__ import annotations

import logging

import zmq

from spec_kit_runtime.errors import EncodeError
from spec_kit_runtime.wire import codec, socket_io
from spec_kit_runtime.wire.protocol import Record, Reply

from .ports import Sent
from .slots import PluginSlot

log = logging.getLogger(__name__)


class SocketOutbox:
    """Sends on the workers', clients' and control sockets by connection identity."""

    def __init__(self, workers: zmq.Socket[bytes], clients: zmq.Socket[bytes],
                 control: zmq.Socket[bytes], frame_limit: int) -> None:
        self._workers, self._clients, self._control = workers, clients, control
        self._frame_limit = frame_limit

    def to_worker(self, slot: PluginSlot, record: Record) -> Sent:
        """To the plugin's connected worker."""
        if slot.identity is None:
            log.warning("plugin %s: no connected worker for %s", slot.plugin_id,
                        type(record).__name__)
            return Sent.NO_WORKER
        return self._send(self._workers, slot.identity, record)

    def to_worker_connection(self, identity: bytes, record: Record) -> Sent:
        """To a worker connection, whichever plugin's worker it is by now."""
        return self._send(self._workers, identity, record)

    def to_client(self, identity: bytes, record: Record) -> Sent:
        return self._send(self._clients, identity, record)

    def to_control(self, identity: bytes, record: Record) -> Sent:
        return self._send(self._control, identity, record)

    def _send(self, sock: zmq.Socket[bytes], identity: bytes, record: Record) -> Sent:
        try:
            frame = codec.encode_within(record, self._frame_limit)
        except EncodeError as exc:
            if not isinstance(record, Reply):
                log.warning("could not deliver %s: %s", type(record).__name__, exc.message)
                return Sent.TOO_BIG
            frame = codec.encode(Reply(record.cid, False, codec.pack_error(exc)))
        try:
            socket_io.send_routed(sock, identity, frame)
        except zmq.ZMQError as exc:  # peer gone (ROUTER_MANDATORY) or its queue is full
            log.warning("could not deliver %s: %s", type(record).__name__, exc.strerror)
            return Sent.GONE if exc.errno == zmq.EHOSTUNREACH else Sent.FULL
        return Sent.OK
