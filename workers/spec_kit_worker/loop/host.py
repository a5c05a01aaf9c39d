"""The worker's loop: one DEALER socket to the supervisor, one plugin, one thread.

The plugin runs on this process's main thread. A handler that sends a message waits for
the reply while still serving calls addressed to this plugin (re-entrant), so plugin A
calling B calling A does not deadlock.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

import zmq
from spec_kit_contracts import IPlugin, Message, PluginStatus

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
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.plugins.facts import facts_of
from spec_kit_runtime.policy.scopes import Scope
from spec_kit_runtime.wire import codec, socket_io
from spec_kit_runtime.wire.addressing import address_of
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_runtime.wire.protocol import (
    MAX_STATUS_LENGTH,
    Call,
    Heartbeat,
    Hello,
    Phase,
    PhaseName,
    Record,
    Reply,
    Send,
    ServiceCall,
    Stop,
    Subscribe,
    Unsubscribe,
)
from spec_kit_worker.libc import release_free_memory

from .bus import WorkerBus
from .call_progress import CallProgress
from .loader import load_plugin_class
from .registry import FALLBACK_PRIORITY, Handler, WorkerRegistry
from .services import host_services

log = logging.getLogger("spec_kit_worker")
_START_PHASES = frozenset({PhaseName.LOAD, PhaseName.INITIALIZE, PhaseName.ACTIVATE})
_TRIM_AFTER = 0.05  # seconds after a phase
_REPLY_GRACE = 5.0  # past the deadline, the supervisor's own timeout error should be here


def configure_logging() -> None:
    """The worker's log lines, on its stderr (the supervisor adds the plugin id). Done by
    the fork server before it forks (0.3 ms of every worker's start otherwise); a no-op
    when done already."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


class WorkerHost:
    """Runs one plugin for the supervisor."""

    def __init__(self, bootstrap: Bootstrap, confinement: dict[str, bool | str],
                 back: socket.socket | None = None, context: zmq.Context[Any] | None = None,
                 cached: int | None = None, progress: int | None = None) -> None:
        """``back``, ``cached``: the return channel for the plugin's code and the memfd with
        the code an earlier worker compiled (``loop.code_cache``), for the loader to close.
        ``context``: ZeroMQ's, made ahead by a spare (it starts no thread until the first
        socket); else made here. ``progress``: the page where the worker writes the calls it
        begins (``call_progress``), mapped and closed here."""
        self.boot = bootstrap
        self.confinement = confinement  # told in the Hello (see confine.py)
        self._back = back  # the return channel for the plugin's code (loop.code_cache)
        self._cached = cached  # the fd of the plugin's code, compiled by an earlier worker
        self.scope = Scope(bootstrap.plugin_id, bootstrap.scope)
        self._thread = threading.get_ident()
        self._progress = CallProgress(progress)
        self.registry = WorkerRegistry(self.scope, self._announce, self._withdraw)
        self.registry.bus = bus = WorkerBus(self)
        self.registry.host_services = host_services(self, bus)
        self.plugin: IPlugin | None = None
        self._context = context or zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 1000)
        self._socket.setsockopt(zmq.MAXMSGSIZE, codec.receive_limit(bootstrap.max_message_bytes))
        self._stopping = False
        self._next_cid = 1
        self._waiting: set[int] = set()  # cids of sends whose handler is still waiting
        self._parked: dict[int, Reply] = {}
        self._deferred: deque[Record] = deque()
        self._preloaded: tuple[IPlugin | None, Exception | None] | None = None
        self._failed_phase: str | None = None  # a start-up phase failed: the later ones skip
        self._trim_at: float | None = None  # when to trim the heap, after a phase

    def run(self) -> int:
        """Serve until told to stop; the return value is the process exit code."""
        configure_logging()
        self._socket.connect(self.boot.endpoint)
        self._send(Hello(self.boot.plugin_id, os.getpid(), self.boot.secret,
                         codec.pack_value(self.confinement)))
        mark("hello-sent")
        self._preload()
        mark("plugin-compiled")
        try:
            while not self._stopping:
                self._serve(self._next_record())
        finally:
            self._socket.close()
            self._context.term()
        return 0

    def _next_record(self) -> Record | None:
        """What to serve next. A moment after a lifecycle phase, once nothing is waiting,
        the heap's freed pages go back to the kernel (``release_free_memory``): off the
        restart's path, and once per phase, not per request."""
        if self._deferred:
            return self._deferred.popleft()
        if self._trim_at is None:
            return self._receive(None)
        record = self._receive(max(0.0, self._trim_at - time.monotonic()))
        if record is None:
            release_free_memory()
            self._trim_at = None
        return record

    # -- transport -------------------------------------------------------------------------

    def _send(self, record: Record) -> None:
        socket_io.send(self._socket, codec.encode_within(record, self.boot.max_message_bytes))

    def _receive(self, timeout: float | None) -> Record | None:
        if timeout is not None and not self._socket.poll(int(timeout * 1000)):
            return None
        frame = socket_io.receive(self._socket)
        try:
            return codec.decode(frame)
        except ProtocolError as exc:
            log.error("dropped a malformed frame from the supervisor: %s", exc)
            return None

    def _serve(self, record: Record | None) -> None:
        if isinstance(record, Phase):
            self._run_phase(record)
            self._trim_at = time.monotonic() + _TRIM_AFTER
        elif isinstance(record, Call):
            self._run_call(record)
        elif isinstance(record, Heartbeat):
            self._send(record)  # answered by the plugin's thread: it is not stuck
        elif isinstance(record, Stop):
            self._stopping = True
        elif record is not None:
            log.warning("ignored an unexpected %s from the supervisor", type(record).__name__)

    def request(self, address: str, body: bytes, timeout: float) -> Any:
        """Send a message through the supervisor and wait for its reply, serving calls."""
        cid = self._new_cid()
        self._send(Send(cid, address, "", timeout, body))
        return self._await_reply(cid, timeout or self.boot.request_timeout, f"'{address}'",
                                 address=address)

    def call_service(self, service: str, method: str, args: dict[str, Any]) -> Any:
        """Call a host service of the supervisor's and wait for its answer, serving calls
        (as ``request`` does: a plugin's thread may be asked to handle one meanwhile)."""
        cid = self._new_cid()
        self._send(ServiceCall(cid, service, method, codec.pack_value(args)))
        return self._await_reply(cid, self.boot.request_timeout, f"{service}.{method}")

    def tell_service(self, service: str, method: str, args: dict[str, Any]) -> None:
        """A host service call that needs no answer (cid 0: logging)."""
        self.check_thread()
        self._send(ServiceCall(0, service, method, codec.pack_value(args)))

    def check_thread(self) -> None:
        """The socket is the plugin's main thread's: refuse any other."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("the plugin bus and host services may only be used from the "
                               "plugin's main thread")

    def _new_cid(self) -> int:
        self.check_thread()
        cid = self._next_cid
        self._next_cid += 1
        return cid

    def _await_reply(self, cid: int, timeout: float, what: str, **context: Any) -> Any:
        """Wait for the Reply to ``cid``, serving what arrives meanwhile.

        Replies meant for outer waits (a handler that sent while another waited) are parked
        for them; lifecycle records wait until the handlers in flight have finished.
        """
        self._waiting.add(cid)
        deadline = time.monotonic() + timeout + _REPLY_GRACE
        try:
            while (reply := self._parked.pop(cid, None)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    raise DeadlineExceeded(f"no reply from the supervisor for {what}",
                                           **context)
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
        value = codec.unpack_value(reply.body)
        if reply.ok:
            return value
        raise from_data(value)

    def _announce(self, handler: Handler) -> None:
        self._send(Subscribe(handler.sub_id, handler.pattern, handler.priority, handler.kind))

    def _withdraw(self, sub_id: int) -> None:
        self._send(Unsubscribe(sub_id))

    def _reply_ok(self, cid: int, value: Any) -> None:
        try:
            self._send(Reply(cid, True, codec.pack_value(value)))
        except EncodeError as exc:
            self._reply_error(cid, exc)

    def _reply_error(self, cid: int, error: RuntimeFailure) -> None:
        self._send(Reply(cid, False, codec.pack_error(error)))

    # -- lifecycle -------------------------------------------------------------------------

    def _preload(self) -> None:
        """Load the plugin while the Hello is on its way. The supervisor's first request is
        always the load phase, so compiling the plugin (about 2 ms) overlaps the handshake
        instead of following it; the outcome is reported when that request comes."""
        try:
            self._preloaded = (self._load(), None)
        except Exception as exc:
            self._preloaded = (None, exc)

    def _run_phase(self, phase: Phase) -> None:
        if self._failed_phase and phase.phase in _START_PHASES:
            # The supervisor sends load, initialize and activate at once: after a failure
            # the rest must not run (activate after a failed initialize, say).
            self._reply_error(phase.cid, LifecycleError(
                f"plugin '{self.boot.plugin_id}': {phase.phase} skipped, "
                f"{self._failed_phase} failed", plugin=self.boot.plugin_id, phase=phase.phase))
            return
        try:
            status = self._phase(phase)
            answer: dict[str, Any] = {"status": status}
            if phase.phase == PhaseName.LOAD:  # the static facts travel once, with this answer
                answer["plugin"] = facts_of(self._require_plugin())
        except Exception as exc:
            if phase.phase in (PhaseName.LOAD, PhaseName.INITIALIZE):
                self._failed_phase = phase.phase  # the worker is done for: it is killed
            text = traceback.format_exc()
            log.error("%s failed:\n%s", phase.phase, text)
            self._reply_error(phase.cid, LifecycleError(
                f"plugin '{self.boot.plugin_id}' failed in {phase.phase}: "
                f"{type(exc).__name__}: {exc}",
                plugin=self.boot.plugin_id, phase=phase.phase,
                exception=type(exc).__name__, traceback=text,
            ))
            return
        self._reply_ok(phase.cid, answer)
        mark(f"{phase.phase}-done")

    def _phase(self, phase: Phase) -> str:
        if phase.phase == PhaseName.LOAD:
            preloaded, self._preloaded = self._preloaded, None
            if preloaded is None:
                self.plugin = self._load()
            elif preloaded[1] is not None:
                raise preloaded[1]
            else:
                self.plugin = preloaded[0]
        else:
            plugin = self._require_plugin()
            if phase.phase == PhaseName.INITIALIZE:
                config = codec.unpack_value(phase.body) or {}
                plugin.initialize(config)
            elif phase.phase == PhaseName.ACTIVATE:
                plugin.activate()
                self._register(plugin)
            elif phase.phase == PhaseName.DEACTIVATE:
                plugin.deactivate()  # raising leaves the plugin, and its handlers, as they were
                self.registry.clear()
            elif phase.phase == PhaseName.SHUTDOWN:
                plugin.shutdown()
                self.registry.clear()
            else:
                raise ProtocolError(f"unknown phase '{phase.phase}'")
        return self._status()

    def _load(self) -> IPlugin:
        back, self._back = self._back, None  # closed by the loader: one load offers code
        cached, self._cached = self._cached, None  # and uses it
        cls = load_plugin_class(
            self.boot.plugin_id, Path(self.boot.plugin_file), self.boot.entry_point,
            self.boot.sandbox, Path(self.boot.plugin_dir), back, cached,
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
        return str(value)[:MAX_STATUS_LENGTH] if value is not None else PluginStatus.LOADED.value

    # -- handlers --------------------------------------------------------------------------

    def _run_call(self, call: Call) -> None:
        if call.cid:  # an event (cid 0) is never held for a replacement: nothing to tell
            self._progress.began(call.cid)
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
        message = codec.unpack_message(call.body)
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
