"""Frames in and out of ZeroMQ sockets with the least Python per message.

pyzmq's convenience layer (``send_multipart``, ``recv_multipart``, flags as IntFlag enums)
costs more per message than libzmq's own send: a profile of the supervisor routing
pipelined calls put it at a fifth of the loop. These helpers call the compiled socket
methods directly with plain int flags. Every side uses them for its per-message traffic.
"""

from __future__ import annotations

import zmq
from zmq.backend import Socket as _CompiledSocket

_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)
_send = _CompiledSocket.send
_recv = _CompiledSocket.recv
_get = _CompiledSocket.get


def send_routed(sock: zmq.Socket[bytes], identity: bytes, frame: bytes) -> None:
    """Send ``frame`` to peer ``identity`` of a ROUTER socket without blocking.

    Raises zmq.ZMQError: EHOSTUNREACH when the peer is gone (ROUTER_MANDATORY), EAGAIN when
    its queue is full.
    """
    _send(sock, identity, _NOBLOCK | _SNDMORE)
    _send(sock, frame, _NOBLOCK)


def receive_routed(sock: zmq.Socket[bytes]) -> tuple[bytes, bytes | None]:
    """The next (identity, frame) waiting on a ROUTER socket; raises zmq.Again when none.

    The frame is None when the peer sent other than exactly one frame (the rest is read
    and discarded, so the next call starts at a message boundary).
    """
    identity: bytes = _recv(sock, _NOBLOCK)
    part = _recv(sock, _NOBLOCK, False)  # a ROUTER hands the identity and the rest at once
    if not part.more:  # (a Frame says so for less than a getsockopt call costs)
        frame: bytes = part.bytes
        return identity, frame
    while _get(sock, _RCVMORE):
        _recv(sock, _NOBLOCK)
    return identity, None


def send(sock: zmq.Socket[bytes], frame: bytes) -> None:
    """Send one frame on a DEALER socket (blocking while its queue is full)."""
    _send(sock, frame, 0)


def receive(sock: zmq.Socket[bytes]) -> bytes:
    """Receive one frame from a DEALER socket (blocking: poll first where that matters)."""
    frame: bytes = _recv(sock, 0)
    return frame
