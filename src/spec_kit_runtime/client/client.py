"""Talking to a supervisor from another process: the CLI and PluginContainer use this.

A client is a DEALER socket (a CURVE client for a tcp:// endpoint, see ``curve``) that
proves the token from the runtime directory, then sends requests and waits for the
matching reply. Every wait is bounded: a dead or wedged
supervisor gives a clear error, never a hang.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq
from spec_kit_contracts import Message

from spec_kit_runtime.errors import (
    AuthenticationError,
    DeadlineExceeded,
    RoutingError,
    SupervisorUnavailable,
    from_data,
)
from spec_kit_runtime.wire import codec, curve, socket_io
from spec_kit_runtime.wire.addressing import address_of
from spec_kit_runtime.wire.protocol import (
    Call,
    ClientHello,
    Control,
    ControlOp,
    Readiness,
    Record,
    Reply,
    Send,
    timeout_problem,
)
from spec_kit_runtime.wire.rundir import RuntimeDir, default_runtime_dir

DEFAULT_REQUEST_TIMEOUT = 30.0
LIFECYCLE_TIMEOUT = 120.0
_GRACE = 5.0  # past a request's own deadline, the supervisor's error reply should be here


class SupervisorClient:
    """A connection to one supervisor (thread-safe: one request at a time)."""

    def __init__(self, endpoint: str, token: bytes, *, server_key: str | None = None,
                 connect_timeout: float = 5.0, pid: int | None = None) -> None:
        """``server_key``: the supervisor's CURVE public key (Z85), needed for tcp://."""
        curve.check_server_key(endpoint, server_key)
        self.endpoint = endpoint
        self._pid = pid
        self._pidfd = _watch(pid)  # the supervisor's death ends every wait at once
        self.token = token  # for further connections of this process (caller handlers)
        self.server_key = server_key  # likewise
        self._context = zmq.Context()
        self._socket = curve.client_socket(self._context, endpoint, server_key)
        handshakes = curve.watch_handshakes(self._socket)
        self._socket.connect(endpoint)
        self._lock = threading.Lock()
        self._next_cid = 1
        self.max_message_bytes = 1 << 20  # until the supervisor tells its own limit
        self.request_timeout = DEFAULT_REQUEST_TIMEOUT  # likewise, its default deadline
        try:
            limits = self._exchange(ClientHello(token), 0, connect_timeout, handshakes)
        except BaseException:
            curve.stop_watching(self._socket, handshakes)
            self.close()
            raise
        curve.stop_watching(self._socket, handshakes)
        if isinstance(limits, dict) and isinstance(limits.get("max_message_bytes"), int):
            self.max_message_bytes = limits["max_message_bytes"]
        if isinstance(limits, dict) and isinstance(limits.get("request_timeout"), float):
            self.request_timeout = limits["request_timeout"]

    @classmethod
    def find(cls, runtime_dir: Path | None = None, *, control: bool = False
             ) -> SupervisorClient:
        """Connect to the supervisor running with ``runtime_dir`` (default: the user's);
        ``control``: to its control socket, for control operations that must not wait
        behind message traffic (status, health, lifecycle)."""
        rundir = RuntimeDir(runtime_dir or default_runtime_dir())
        address = rundir.read_address()
        pid = address.get("pid")
        endpoint = address.get("control") if control else address["endpoint"]
        if not isinstance(endpoint, str):
            raise SupervisorUnavailable(f"{rundir.address_file} names no control socket")
        return cls(endpoint, rundir.read_token(), server_key=address.get("server_key"),
                   pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None)

    def another(self) -> SupervisorClient:
        """A new connection to the same supervisor (for another thread)."""
        return SupervisorClient(self.endpoint, self.token, server_key=self.server_key,
                                pid=self._pid)

    def control(self, op: ControlOp, timeout: float = LIFECYCLE_TIMEOUT, **args: Any) -> Any:
        """Run a control operation (status, load, activate, ...) and return its result."""
        body = codec.pack_value(args)
        return self._request(lambda cid: Control(cid, op, body), timeout)

    def send(self, message: Message, as_plugin: str = "",
             timeout: float | None = None, wait_for_ready: bool | None = None) -> Any:
        """Route ``message`` with ``as_plugin``'s scope; returns the handler's result.

        ``wait_for_ready``: whether a call to a plugin that is starting or restarting waits
        for it (True) or fails at once (False); None: the supervisor's default."""
        address = address_of(message)
        chosen = float(timeout or getattr(message, "timeout", None) or 0.0)  # 0: the default
        problem = timeout_problem(chosen)
        if problem:
            raise RoutingError(problem, address=address)
        body = codec.pack_message(message)
        ready = int(Readiness.DEFAULT if wait_for_ready is None
                    else Readiness.WAIT if wait_for_ready else Readiness.FAIL_FAST)
        return self._request(lambda cid: Send(cid, address, as_plugin, chosen, body, ready),
                             (chosen or self.request_timeout) + _GRACE)

    def follow(self, pattern: str = "event:system:*") -> Iterator[Message]:
        """Subscribe this connection to events matching ``pattern`` now; the iterator
        yields each one as it comes, until the supervisor goes (then SupervisorUnavailable)."""
        self.control(ControlOp.SUBSCRIBE, timeout=10.0, plugin="", pattern=pattern, sub_id=1,
                     priority=50)
        return self._incoming()

    def _incoming(self) -> Iterator[Message]:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        if self._pidfd is not None:
            poller.register(self._pidfd, zmq.POLLIN)
        while True:
            ready = dict(poller.poll(1000))  # a second at a time: Ctrl-C stays prompt
            if self._socket in ready:
                record = codec.decode(socket_io.receive(self._socket))
                if isinstance(record, Call) and record.cid == 0:  # one way: nothing to answer
                    yield codec.unpack_message(record.body)
            elif self._pidfd in ready:
                raise SupervisorUnavailable(f"the supervisor at {self.endpoint} exited")

    def _request(self, make: Any, timeout: float) -> Any:
        with self._lock:
            cid = self._next_cid
            self._next_cid += 2  # odd: first try; even: the retry after re-authenticating
            try:
                return self._exchange(make(cid), cid, timeout)
            except AuthenticationError as exc:
                if exc.context.get("reason") != "unauthenticated":
                    raise
                # The supervisor forgot this idle connection: prove the token again, retry.
                self._exchange(ClientHello(self.token), 0, timeout)
                return self._exchange(make(cid + 1), cid + 1, timeout)

    def _exchange(self, record: Record, cid: int, timeout: float,
                  handshakes: zmq.Socket[bytes] | None = None) -> Any:
        """Send ``record``, return the answer to ``cid``; ``handshakes``: readable when a
        CURVE handshake failed (see curve.watch_handshakes)."""
        socket_io.send(self._socket, codec.encode_within(record, self.max_message_bytes))
        end = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        for fd in (self._pidfd, handshakes):
            if fd is not None:
                poller.register(fd, zmq.POLLIN)
        while (remaining := end - time.monotonic()) > 0:
            ready = dict(poller.poll(int(remaining * 1000) + 1))
            if handshakes in ready:
                raise AuthenticationError(
                    f"the CURVE handshake with {self.endpoint} failed: no supervisor with "
                    "this server key listens there (an old supervisor.json, or a stranger "
                    "on the port)", reason="handshake")
            if self._socket not in ready:
                if self._pidfd in ready and not self._socket.poll(50):  # a last reply?
                    raise SupervisorUnavailable(f"the supervisor at {self.endpoint} exited")
                continue
            reply = codec.decode(self._socket.recv())
            if isinstance(reply, Reply) and reply.cid == cid:  # else: a late, abandoned reply
                value = codec.unpack_value(reply.body)
                if reply.ok:
                    return value
                raise from_data(value)
        if cid == 0:
            raise SupervisorUnavailable(f"no supervisor answered at {self.endpoint}")
        raise DeadlineExceeded(f"the supervisor did not answer within {timeout:g}s")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if not self._socket.closed:
            self._socket.close(0)
            self._context.term()
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None


def _watch(pid: int | None) -> int | None:
    """A pidfd for the supervisor's process; SupervisorUnavailable if it is not running."""
    if pid is None:
        return None
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise SupervisorUnavailable(f"the supervisor (pid {pid}) is not running") from None
    except OSError:  # no pidfds here: the deadlines still bound every wait
        return None
