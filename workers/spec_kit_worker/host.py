"""The worker's loop: one DEALER socket to the supervisor, one plugin, one thread.

The plugin runs on this process's main thread. A handler that sends a message waits for
the reply while still serving calls addressed to this plugin (re-entrant), so plugin A
calling B calling A does not deadlock.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

import zmq
from spec_kit_contracts import IPlugin, Message

from spec_kit_runtime import wire
from spec_kit_runtime.addressing import address_of
from spec_kit_runtime.bootstrap import Bootstrap
from spec_kit_runtime.errors import (
    DeadlineExceeded,
    EncodeError,
    HandlerError,
    LifecycleError,
    NoHandlerError,
    ProtocolError,
    RuntimeFailure,
    from_data,
)
from spec_kit_runtime.protocol import (
    Call,
    Heartbeat,
    Hello,
    Phase,
    Record,
    Reply,
    Send,
    Stop,
    Subscribe,
)
from spec_kit_runtime.scopes import Scope

from .bus import WorkerBus
from .loader import load_plugin_class
from .registry import FALLBACK_PRIORITY, Handler, WorkerRegistry

log = logging.getLogger("spec_kit_worker")
_REPLY_GRACE = 5.0  # past the deadline, the supervisor's own timeout error should be here


class WorkerHost:
    """Runs one plugin for the supervisor."""

    def __init__(self, bootstrap: Bootstrap, confinement: dict[str, bool | str]) -> None:
        self.boot = bootstrap
        self.confinement = confinement  # told in the Hello (see confine.py)
        self.scope = Scope(bootstrap.plugin_id, bootstrap.scope)
        self.registry = WorkerRegistry(self.scope, self._announce)
        self.registry.bus = WorkerBus(self)
        self.plugin: IPlugin | None = None
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 1000)
        self._socket.setsockopt(zmq.MAXMSGSIZE, wire.receive_limit(bootstrap.max_message_bytes))
        self._stopping = False
        self._next_cid = 1
        self._waiting: set[int] = set()  # cids of sends whose handler is still waiting
        self._parked: dict[int, Reply] = {}
        self._deferred: deque[Record] = deque()

    def run(self) -> int:
        """Serve until told to stop; the return value is the process exit code."""
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr,
            format="%(levelname)s %(name)s: %(message)s",  # the supervisor adds the plugin id
        )
        self._socket.connect(self.boot.endpoint)
        self._send(Hello(self.boot.plugin_id, os.getpid(), self.boot.secret,
                         wire.pack_value(self.confinement)))
        try:
            while not self._stopping:
                deferred = self._deferred.popleft() if self._deferred else None
                self._serve(deferred or self._receive(None))
        finally:
            self._socket.close()
            self._context.term()
        return 0

    # -- transport -------------------------------------------------------------------------

    def _send(self, record: Record) -> None:
        self._socket.send(wire.encode_within(record, self.boot.max_message_bytes), copy=False)

    def _receive(self, timeout: float | None) -> Record | None:
        if timeout is not None and not self._socket.poll(int(timeout * 1000)):
            return None
        frame = self._socket.recv(copy=True)
        try:
            return wire.decode(frame)
        except ProtocolError as exc:
            log.error("dropped a malformed frame from the supervisor: %s", exc)
            return None

    def _serve(self, record: Record | None) -> None:
        if isinstance(record, Phase):
            self._run_phase(record)
        elif isinstance(record, Call):
            self._run_call(record)
        elif isinstance(record, Heartbeat):
            self._send(record)  # answered by the plugin's thread: it is not stuck
        elif isinstance(record, Stop):
            self._stopping = True
        elif record is not None:
            log.warning("ignored an unexpected %s from the supervisor", type(record).__name__)

    def request(self, address: str, body: bytes, timeout: float) -> Any:
        """Send a message through the supervisor and wait for its reply, serving calls.

        Replies meant for outer waits (a handler that sent while another waited) are parked
        for them; lifecycle records wait until the handlers in flight have finished.
        """
        cid = self._next_cid
        self._next_cid += 1
        self._send(Send(cid, address, "", timeout, body))
        self._waiting.add(cid)
        deadline = time.monotonic() + (timeout or self.boot.request_timeout) + _REPLY_GRACE
        try:
            while (reply := self._parked.pop(cid, None)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    raise DeadlineExceeded(f"no reply from the supervisor for '{address}'",
                                           address=address)
                record = self._receive(remaining)
                if isinstance(record, Reply):
                    if record.cid in self._waiting:
                        self._parked[record.cid] = record
                elif isinstance(record, Phase | Stop):
                    self._deferred.append(record)
                else:
                    self._serve(record)
        finally:
            self._waiting.discard(cid)
        value = wire.unpack_value(reply.body)
        if reply.ok:
            return value
        raise from_data(value)

    def _announce(self, handler: Handler) -> None:
        self._send(Subscribe(handler.sub_id, handler.pattern, handler.priority, handler.kind))

    def _reply_ok(self, cid: int, value: Any) -> None:
        try:
            self._send(Reply(cid, True, wire.pack_value(value)))
        except EncodeError as exc:
            self._reply_error(cid, exc)

    def _reply_error(self, cid: int, error: RuntimeFailure) -> None:
        self._send(Reply(cid, False, wire.pack_error(error)))

    # -- lifecycle -------------------------------------------------------------------------

    def _run_phase(self, phase: Phase) -> None:
        try:
            status = self._phase(phase)
        except Exception as exc:
            text = traceback.format_exc()
            log.error("%s failed:\n%s", phase.phase, text)
            self._reply_error(phase.cid, LifecycleError(
                f"plugin '{self.boot.plugin_id}' failed in {phase.phase}: "
                f"{type(exc).__name__}: {exc}",
                plugin=self.boot.plugin_id, phase=phase.phase,
                exception=type(exc).__name__, traceback=text,
            ))
            return
        self._reply_ok(phase.cid, {"status": status})

    def _phase(self, phase: Phase) -> str:
        if phase.phase == "load":
            self.plugin = self._load()
        else:
            plugin = self._require_plugin()
            if phase.phase == "initialize":
                config = wire.unpack_value(phase.body) or {}
                plugin.initialize(config)
            elif phase.phase == "activate":
                plugin.activate()
                self._register(plugin)
            elif phase.phase == "deactivate":
                plugin.deactivate()  # raising leaves the plugin, and its handlers, as they were
                self.registry.clear()
            elif phase.phase == "shutdown":
                plugin.shutdown()
                self.registry.clear()
            else:
                raise ProtocolError(f"unknown phase '{phase.phase}'")
        return self._status()

    def _load(self) -> IPlugin:
        cls = load_plugin_class(
            self.boot.plugin_id, Path(self.boot.plugin_file), self.boot.entry_point,
            self.boot.sandbox,
        )
        plugin = cls()
        if not isinstance(plugin, IPlugin):
            raise LifecycleError(
                f"{self.boot.entry_point} does not implement IPlugin (metadata, status, "
                "initialize, activate, deactivate, shutdown, health_check, get_config_schema)",
                plugin=self.boot.plugin_id, phase="load",
            )
        return plugin

    def _register(self, plugin: IPlugin) -> None:
        register = getattr(plugin, "register_services", None)
        if callable(register):
            register(self.registry)
        handle = getattr(plugin, "handle_message", None)
        if callable(handle):
            own = self.boot.plugin_id
            for pattern in (f"command:{own}:*", f"request:{own}:*"):
                self.registry.add(pattern, handle, "fallback", FALLBACK_PRIORITY)

    def _require_plugin(self) -> IPlugin:
        if self.plugin is None:
            raise LifecycleError("the plugin is not loaded", plugin=self.boot.plugin_id)
        return self.plugin

    def _status(self) -> str:
        status = getattr(self.plugin, "status", None)
        value = getattr(status, "value", status)
        return str(value) if value is not None else "loaded"

    # -- handlers --------------------------------------------------------------------------

    def _run_call(self, call: Call) -> None:
        try:
            result = self._call(call)
        except RuntimeFailure as exc:
            self._fail_call(call, exc)
        except Exception as exc:
            text = traceback.format_exc()
            log.error("handler for '%s' raised:\n%s", call.address, text)
            self._fail_call(call, HandlerError(
                f"plugin '{self.boot.plugin_id}' handler for '{call.address}' raised "
                f"{type(exc).__name__}: {exc}",
                plugin=self.boot.plugin_id, address=call.address,
                exception=type(exc).__name__, traceback=text,
            ))
        else:
            if call.cid:
                self._reply_ok(call.cid, result)

    def _fail_call(self, call: Call, error: RuntimeFailure) -> None:
        if call.cid:
            self._reply_error(call.cid, error)
        else:
            log.error("event handler for '%s' failed: %s", call.address, error)

    def _call(self, call: Call) -> Any:
        handler = self.registry.handlers.get(call.sub_id)
        if handler is None:
            raise NoHandlerError(
                f"plugin '{self.boot.plugin_id}' no longer handles '{call.address}'",
                plugin=self.boot.plugin_id, address=call.address,
            )
        message = wire.unpack_message(call.body)
        if address_of(message) != call.address:
            raise ProtocolError(f"message body does not match its address '{call.address}'")
        message.source = call.source
        message.metadata["handler_plugin"] = self.boot.plugin_id
        return self._invoke(handler, message)

    def _invoke(self, handler: Handler, message: Message) -> Any:
        if handler.kind == "command":
            return handler.function(
                getattr(message, "arguments", []), getattr(message, "options", {})
            )
        return handler.function(message)
