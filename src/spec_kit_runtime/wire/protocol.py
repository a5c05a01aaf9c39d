"""The vocabulary of the wire protocol: one small typed record per message kind.

Every record travels as one ZeroMQ frame (see ``codec``): a routing header holding the
record's fields, then an opaque ``body`` (msgpack) that the supervisor forwards without
decoding. Field types are checked on decode, so a record in hand is well-formed.

Direction legend: W worker, S supervisor, C client, F the fork server (whose records
travel on a private socketpair, never on a ZeroMQ socket).
"""

import logging
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import ClassVar

PROTOCOL_VERSION = 3  # 2: Send.ready (calls wait for ready); 3: Exited.began
MAX_TIMEOUT = 86_400.0  # Send.timeout: 0 (the default) up to a day; longer is a mistake
# The levels a plugin may log at through ILoggingService, checked in the worker and again by
# the supervisor.
LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
              "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
MAX_STATUS_LENGTH = 64  # a phase answer's status: a PluginStatus value, or near enough


class PhaseName(StrEnum):
    """A lifecycle phase, run by the worker on its plugin (``Phase.phase``)."""

    LOAD = "load"
    INITIALIZE = "initialize"
    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"
    SHUTDOWN = "shutdown"


class ControlOp(StrEnum):
    """An operation a client asks of the supervisor (``Control.op``)."""

    PING = "ping"
    STATUS = "status"  # the supervisor and every plugin (wire.status)
    HEALTH = "health"  # the verdict (policy.health)
    PLUGINS = "plugins"  # each plugin's state and facts (wire.status)
    LOAD = "load"
    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"
    UNLOAD = "unload"
    STOP = "stop"
    START = "start"
    RESTART = "restart"
    SHUTDOWN = "shutdown"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


def timeout_problem(value: float) -> str | None:
    """Why ``value`` is not a valid ``Send.timeout`` (NaN and infinity included), or None."""
    if 0 <= value <= MAX_TIMEOUT:
        return None
    return f"timeout must be 0 (the default) to {MAX_TIMEOUT:g} seconds, not {value!r}"


@dataclass(frozen=True, slots=True)
class Hello:
    """W→S, first record of a worker: proves it is the worker the supervisor spawned.

    body: the layers of confinement it applied itself, each True or why the kernel would
    not have it (a map; see ``spec_kit_worker.confinement.layers``).
    """

    KIND: ClassVar[int] = 1
    plugin_id: str
    pid: int
    secret: bytes
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class ClientHello:
    """C→S, first record of a client: proves it may talk to this supervisor."""

    KIND: ClassVar[int] = 2
    token: bytes


@dataclass(frozen=True, slots=True)
class Phase:
    """S→W, run one lifecycle phase (load, initialize, activate, deactivate, shutdown).

    ``phase``: a PhaseName; any other text is answered with an error by the worker.
    body: the plugin's config for ``initialize``, else empty.
    """

    KIND: ClassVar[int] = 3
    cid: int
    phase: str
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """W→S, the plugin registered a handler for ``pattern`` (kind: command, hook, ...)."""

    KIND: ClassVar[int] = 4
    sub_id: int
    pattern: str
    priority: int
    kind: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """W→S, the plugin dropped a handler."""

    KIND: ClassVar[int] = 5
    sub_id: int


@dataclass(frozen=True, slots=True)
class Call:
    """S→W, run the handler ``sub_id`` on the message in ``body``.

    ``address`` is what the message was routed by and ``source`` is the sender's identity
    as stamped by the supervisor; the worker overrides the body's own ``source`` with it.
    """

    KIND: ClassVar[int] = 6
    cid: int
    sub_id: int
    address: str
    source: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Send:
    """W→S or C→S, route the message in ``body`` to ``address``; a Reply follows.

    ``as_plugin`` names the scope a client sends with; the supervisor ignores it for
    workers, which always send as their own plugin. ``ready`` (a ``Readiness``): whether a
    call to a plugin that is starting or restarting waits for it to be active.
    """

    KIND: ClassVar[int] = 7
    cid: int
    address: str
    as_plugin: str
    timeout: float
    body: bytes
    ready: int = 0  # Readiness.DEFAULT


class Readiness(IntEnum):
    """A call's choice when its plugin is starting or restarting (``Send.ready``)."""

    DEFAULT = 0  # as the supervisor's runtime.wait_for_ready says
    WAIT = 1  # held until the plugin is active, up to the call's deadline
    FAIL_FAST = 2  # PluginNotActiveError at once


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer to a Phase, Call, Send or Control: ``body`` is the result or the error data."""

    KIND: ClassVar[int] = 8
    cid: int
    ok: bool
    body: bytes


@dataclass(frozen=True, slots=True)
class Control:
    """C→S, an operation on the supervisor (status, load, activate, ...); body: its args.

    ``op``: a ControlOp; any other text is answered with a protocol error.
    """

    KIND: ClassVar[int] = 9
    cid: int
    op: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Stop:
    """S→W, exit now: the lifecycle is over (or the supervisor is going away)."""

    KIND: ClassVar[int] = 10


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """S→W, echoed W→S by the plugin's own thread: proves that thread is not stuck."""

    KIND: ClassVar[int] = 11
    seq: int


@dataclass(frozen=True, slots=True)
class Spawn:
    """S→F, start a worker: ``method`` fork (from the pre-imported fork server) or spawn (a
    fresh interpreter); body: the worker's Bootstrap. Spawned answers with the same tag."""

    KIND: ClassVar[int] = 12
    tag: int
    method: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Spawned:
    """F→S, the worker of Spawn ``tag`` runs as ``pid``; or pid 0 and why it could not start."""

    KIND: ClassVar[int] = 13
    tag: int
    pid: int
    error: str


@dataclass(frozen=True, slots=True)
class Signal:
    """S→F, send ``signum`` to the worker ``pid``, its process group and its whole tree."""

    KIND: ClassVar[int] = 14
    pid: int
    signum: int


@dataclass(frozen=True, slots=True)
class Exited:
    """F→S, the worker ``pid`` ended (``returncode``: negative for a signal), its leftovers
    killed. ``began``: the cid of the last routed call it began (0: none; ``NOT_KNOWN``),
    as its call progress page says (``spec_kit_worker.loop.call_progress``)."""

    KIND: ClassVar[int] = 15
    NOT_KNOWN: ClassVar[int] = -1
    pid: int
    returncode: int
    began: int

    def began_call(self) -> int | None:
        """``began``, None when not known."""
        return None if self.began == self.NOT_KNOWN else self.began


@dataclass(frozen=True, slots=True)
class ServiceCall:
    """W→S, call ``method`` of the host ``service`` the supervisor serves to this plugin.

    body: the arguments (msgpack map). The supervisor decodes it (these records are
    addressed to it, not routed) and answers with a Reply of the same cid; cid 0 is
    one-way (logging), with no reply. The plugin is the connection's, never a field.
    """

    KIND: ClassVar[int] = 16
    cid: int
    service: str
    method: str
    body: bytes


Record = (
    Hello | ClientHello | Phase | Subscribe | Unsubscribe | Call | Send | Reply | Control | Stop
    | Heartbeat | Spawn | Spawned | Signal | Exited | ServiceCall
)

RECORD_TYPES: tuple[type[Record], ...] = (
    Hello, ClientHello, Phase, Subscribe, Unsubscribe, Call, Send, Reply, Control, Stop,
    Heartbeat, Spawn, Spawned, Signal, Exited, ServiceCall,
)
