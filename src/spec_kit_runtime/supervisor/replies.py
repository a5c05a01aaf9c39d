"""Where answers and caller handlers live on the wire: a Reply back to the connection that
asked, and the routing-table owner that stands for a client connection's handlers."""

from __future__ import annotations

from collections.abc import Callable

from spec_kit_runtime.wire.protocol import Control, Record, Reply, Send, ServiceCall

from .ports import Sent
from .slots import Responder


def caller_key(identity: bytes) -> str:
    """The routing-table owner of handlers living in the client connection ``identity``."""
    return f"caller:{identity.hex()}"


def replier(send: Callable[[bytes, Record], Sent], identity: bytes,
            record: Send | Control | ServiceCall) -> Responder:
    """Where the answer to ``record`` goes: a Reply with its cid, sent to ``identity``."""
    cid = record.cid

    def respond(ok: bool, body: bytes) -> None:
        send(identity, Reply(cid, ok, body))

    return respond
