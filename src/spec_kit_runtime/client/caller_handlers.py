"""Handlers that live in the calling process, reachable from plugins (``container.subscribe``).

A ZeroMQ socket belongs to one thread, so a serving thread owns a second client
connection: it forwards subscriptions, receives the supervisor's Calls and sends the
replies. Handlers run on a small pool of daemon threads (``daemon_pool``), never on the
serving thread, so a handler may itself send messages (even ones that come back to another
caller handler), and one that never returns does not keep the process from exiting.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import zmq
from spec_kit_contracts import Message

from spec_kit_runtime.errors import (
    HandlerError,
    ProtocolError,
    RuntimeFailure,
    SupervisorUnavailable,
    from_data,
)
from spec_kit_runtime.wire import codec, curve
from spec_kit_runtime.wire.addressing import address_of
from spec_kit_runtime.wire.protocol import Call, ClientHello, Control, ControlOp, Record, Reply

from .daemon_pool import DaemonPool

_CONTROL_TIMEOUT = 10.0


class CallerHandlers:
    """A connection serving handlers that run in this process."""

    def __init__(self, endpoint: str, token: bytes, server_key: str | None = None,
                 max_workers: int = 4) -> None:
        """``server_key``: the supervisor's CURVE public key (Z85), needed for tcp://."""
        curve.check_server_key(endpoint, server_key)
        self._endpoint, self._token, self._server_key = endpoint, token, server_key
        self._handlers: dict[int, Callable[[Message], Any]] = {}
        self._sub_ids = itertools.count(1)
        self._outbox: queue.SimpleQueue[tuple[Record, Future[Any] | None]] = queue.SimpleQueue()
        self._waiting: dict[int, Future[Any]] = {}
        self._cids = itertools.count(1)
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pool = DaemonPool(max_workers, "spec-kit-handler")
        self._closing = False
        self.max_message_bytes = 1 << 20  # until the supervisor tells its own limit
        hello: Future[Any] = Future()
        self._thread = threading.Thread(target=self._serve, args=(hello,), daemon=True,
                                         name="spec-kit-caller-handlers")
        self._thread.start()
        try:
            limits = hello.result(_CONTROL_TIMEOUT)
        except BaseException:
            self.close()
            raise
        if isinstance(limits, dict) and isinstance(limits.get("max_message_bytes"), int):
            self.max_message_bytes = limits["max_message_bytes"]

    def subscribe(self, plugin_id: str, pattern: str, handler: Callable[[Message], Any],
                  priority: int = 50, *, host: bool = False) -> str:
        """Route ``pattern`` (within ``plugin_id``'s scope; ``host``: with the host
        application's authority, plugin_id "") to ``handler(message)`` here."""
        if not callable(handler):
            raise TypeError("handler must be callable")
        sub_id = next(self._sub_ids)
        self._handlers[sub_id] = handler
        extra = {"host": True} if host else {}
        try:
            self._control(ControlOp.SUBSCRIBE, plugin=plugin_id, pattern=pattern, sub_id=sub_id,
                          priority=priority, **extra)
        except BaseException:
            del self._handlers[sub_id]
            raise
        return f"caller_{sub_id}"

    def unsubscribe(self, subscription_id: str) -> bool:
        """Remove a handler added by ``subscribe``; False when it was not there."""
        prefix, _, number = subscription_id.partition("_")
        if prefix != "caller" or not number.isdigit() or int(number) not in self._handlers:
            return False
        self._control(ControlOp.UNSUBSCRIBE, sub_id=int(number))
        del self._handlers[int(number)]
        return True

    def close(self) -> None:
        """Stop serving; the supervisor forgets these handlers when it next tries one."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")  # _wake() no longer does, now we are closing
        self._thread.join(_CONTROL_TIMEOUT)
        self._pool.shutdown()
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)

    # -- talking to the serving thread -----------------------------------------------------

    def _control(self, op: ControlOp, **args: Any) -> Any:
        future: Future[Any] = Future()
        body = codec.pack_value(args)
        self._outbox.put((Control(next(self._cids), op, body), future))
        self._wake()
        return future.result(_CONTROL_TIMEOUT)

    def _wake(self) -> None:
        if self._closing:  # the pipe may be closed (and its fd number reused) by now
            return
        with contextlib.suppress(OSError):  # full pipe: already awake; closed: closing
            os.write(self._wake_write, b"x")

    # -- the serving thread ----------------------------------------------------------------

    def _serve(self, hello: Future[Any]) -> None:
        context = zmq.Context()
        sock = curve.client_socket(context, self._endpoint, self._server_key)
        sock.connect(self._endpoint)
        sock.send(codec.encode(ClientHello(self._token)))
        self._waiting[0] = hello
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_read, zmq.POLLIN)
        try:
            while not self._closing:
                timeout = None if hello.done() else int(1000 * _CONTROL_TIMEOUT)
                ready = dict(poller.poll(timeout))
                if not ready and not hello.done():
                    hello.set_exception(SupervisorUnavailable(
                        f"no supervisor answered at {self._endpoint}"))
                    return
                if self._wake_read in ready:
                    self._drain_wake()
                self._flush(sock)
                if sock in ready:
                    self._receive(sock)
        finally:
            sock.close(0)
            context.term()

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_read, 512):
                pass
        except BlockingIOError:
            pass

    def _flush(self, sock: zmq.Socket[bytes]) -> None:
        while True:
            try:
                record, future = self._outbox.get_nowait()
            except queue.Empty:
                return
            if future is not None and isinstance(record, Control):
                self._waiting[record.cid] = future
            sock.send(codec.encode(record))

    def _receive(self, sock: zmq.Socket[bytes]) -> None:
        while True:
            try:
                record = codec.decode(sock.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            except RuntimeFailure:
                continue
            if isinstance(record, Reply):
                self._settle(record)
            elif isinstance(record, Call):
                self._pool.submit(functools.partial(self._run_handler, record))

    def _settle(self, reply: Reply) -> None:
        future = self._waiting.pop(reply.cid, None)
        if future is None:
            return
        try:
            value = codec.unpack_value(reply.body)
        except RuntimeFailure as exc:
            future.set_exception(exc)
            return
        if reply.ok:
            future.set_result(value)
        else:
            future.set_exception(from_data(value))

    def _run_handler(self, call: Call) -> None:
        handler = self._handlers.get(call.sub_id)
        try:
            if handler is None:
                raise HandlerError(f"no handler {call.sub_id} in this process")
            message = codec.unpack_message(call.body)
            if address_of(message) != call.address:
                raise ProtocolError(f"message body does not match its address '{call.address}'")
            message.source = call.source
            reply = Reply(call.cid, True, codec.pack_value(handler(message)))
            codec.encode_within(reply, self.max_message_bytes)  # too big: answer with the error
        except RuntimeFailure as exc:
            reply = Reply(call.cid, False, codec.pack_error(exc))
        except Exception as exc:
            logging.getLogger(__name__).exception("caller handler for %s raised", call.address)
            reply = Reply(call.cid, False, codec.pack_error(HandlerError(
                f"handler for '{call.address}' raised {type(exc).__name__}: {exc}",
                address=call.address, exception=type(exc).__name__,
                traceback=traceback.format_exc(),
            )))
        if call.cid:
            self._outbox.put((reply, None))
            self._wake()
