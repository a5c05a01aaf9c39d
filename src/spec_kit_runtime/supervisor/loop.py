"""The supervisor process: one loop waiting on sockets, the fork server, signals and timers.

Two ROUTER sockets: one for workers (each proves its per-spawn secret in a Hello) and one
for clients (each proves the token in the runtime directory); what arrives on each is
handed to its door (``worker_door``, ``client_door``). Workers are forked by the fork
server, whose reports of their ends arrive in the same poll, so a death is seen the moment
it happens. Nothing a plugin sends can raise out of the loop: bad frames are dropped and
logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from spec_kit_runtime.errors import ConfigError, ProtocolError, RuntimeFailure
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.policy import offences
from spec_kit_runtime.policy.dependencies import may_stop
from spec_kit_runtime.policy.exits import ExitReason
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.supervisor.host_services.dispatch import HostServices
from spec_kit_runtime.supervisor.ops.systemd_notify import SystemdNotifier
from spec_kit_runtime.wire import codec, curve, socket_io
from spec_kit_runtime.wire.rundir import RuntimeDir

from .client_door import ClientDoor
from .clock import LoopClock
from .control import About, ControlOps
from .forkserver_link import ForkServerLink
from .heartbeats import HeartbeatMonitor
from .lifecycle import Lifecycle
from .outbox import SocketOutbox
from .output_capture import OutputCapture
from .recovery import Recovery
from .router import Router
from .slots import PluginSlot, SlotTable
from .startup import StartUp
from .watchdog import Watchdog
from .worker_door import WorkerDoor
from .worker_process import WorkerProcess
from .workers import WorkerTable

if TYPE_CHECKING:
    from spec_kit_runtime.supervisor.ops.http_endpoints import HttpEndpoints

log = logging.getLogger(__name__)
_MAX_POLL_MS = 60_000
_SHUTDOWN_SLACK = 1.0  # s past the last SIGKILL of a shutdown to see the workers' exits


class Supervisor:
    """Runs plugins in worker processes and routes their messages.

    The composition root: it builds the ports (the slot table, the clock, the outbox, the
    worker table) and the parts that work through them, and wires the events between parts
    that do not know each other: a worker's Hello (door → lifecycle), a worker's end
    (worker table → door, host services, lifecycle, then recovery).
    """

    def __init__(self, config: RuntimeConfig, rundir: RuntimeDir,
                 parent_pid: int | None = None,
                 forkserver: ForkServerLink | None = None,
                 log_file: Path | None = None) -> None:
        """``forkserver``: one already started (``run`` starts it first, to overlap its
        imports with this process's); else one is started here. ``log_file``: where this
        supervisor logs, if not to stderr (a PluginContainer's own; shown in status)."""
        self.config = config
        self.log_file = log_file
        self.clock = LoopClock()
        self.slots = SlotTable()
        self.http = self._http_endpoints(config.http)  # first: a busy port fails the start
        self.rundir = rundir
        self.services = HostServices(config, rundir.path, self.clock.now)  # bad roots: first
        self.started_at = self.clock.now()
        self._lock_fd = rundir.lock()
        self._context = zmq.Context()
        self._workers = self._router_socket(rundir.workers_endpoint)
        rundir.share_workers_socket()
        self.server_key: str | None = None  # CURVE public key (Z85) of a tcp:// clients socket
        self._clients = self._router_socket(config.endpoint or rundir.clients_endpoint)
        self.client_endpoint: str = self._clients.getsockopt_string(zmq.LAST_ENDPOINT)  # port 0
        self._control = self._router_socket(rundir.control_endpoint)
        self.outbox = SocketOutbox(self._workers, self._clients, self._control,
                                   codec.receive_limit(config.max_message_bytes))
        self._poller = zmq.Poller()
        self._poller.register(self._control, zmq.POLLIN)  # first: answered before traffic
        self._poller.register(self._clients, zmq.POLLIN)
        self._poller.register(self._workers, zmq.POLLIN)
        self._poller.register(self.services.fd, zmq.POLLIN)
        self.output = OutputCapture(self.clock.now)
        self._poller.register(self.output.fileno(), zmq.POLLIN)

        self.router = Router(self.slots, self.clock, self.outbox, config)
        self.heartbeats = HeartbeatMonitor(self.slots, self.clock, self.outbox,
                                           config.heartbeat_interval, config.heartbeat_misses)
        self.worker_door = WorkerDoor(self.outbox.to_worker_connection, self.slots, self.router,
                                      self.services.call, self.heartbeats.answered,
                                      self._worker_connected)
        self.workers = WorkerTable(
            config, rundir.workers_endpoint, forkserver or ForkServerLink(config.start_timeout),
            self.clock, self.output, self.worker_door,
            watch=lambda fd: self._poller.register(fd, zmq.POLLIN),
            unwatch=self._poller.unregister, ended=self._worker_ended)
        self.lifecycle = Lifecycle(self.slots, self.clock, self.router, self.router.emit_system,
                                   self.workers, self.outbox, config)
        self.recovery = Recovery(self.lifecycle, self.slots, self.clock,
                                 self.router.emit_system, config.strategy, self.router.settled)
        self.startup = StartUp(self.lifecycle, self.slots)
        self.control = ControlOps(self.slots, self.lifecycle, self.router, self.startup,
                                  self.clock, self._about, self.begin_shutdown)
        self.watchdog = Watchdog(self.slots, self.clock, self.workers, config.watchdog_interval)
        token = rundir.new_token()
        welcome: dict[str, object] = {"max_message_bytes": config.max_message_bytes,
                                      "request_timeout": config.request_timeout}
        self.client_door = ClientDoor(token, self.outbox.to_client, self.router,
                                      self.control.handle, welcome)
        self.control_door = ClientDoor(token, self.outbox.to_control, self.router,
                                       self.control.handle, welcome, control_only=True)
        self.systemd = SystemdNotifier()
        self._signal_fd = self._catch_signals()
        self._parent_fd = os.pidfd_open(parent_pid) if parent_pid else None
        if self._parent_fd is not None:
            self._poller.register(self._parent_fd, zmq.POLLIN)
        self._stopping = False
        self._done = False
        # Clients may connect as soon as the sockets are bound (and `run` says ready).
        self.rundir.write_address(self.client_endpoint, os.getpid(), rundir.control_endpoint,
                                  self.server_key)

    def _router_socket(self, endpoint: str) -> zmq.Socket[bytes]:
        """A bound ROUTER; a tcp:// endpoint (only the clients' may be one) is made a CURVE
        server first, its public key kept as ``server_key``."""
        sock: zmq.Socket[bytes] = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, codec.receive_limit(self.config.max_message_bytes))
        try:
            if curve.required(endpoint):
                self.server_key = curve.make_server(sock)
            sock.bind(endpoint)
        except BaseException as exc:
            sock.close(0)
            if isinstance(exc, zmq.ZMQError):  # e.g. a busy port
                why = zmq.strerror(exc.errno) if exc.errno else str(exc)
                raise ConfigError(f"cannot listen on {endpoint}: {why}") from None
            raise
        return sock

    def _catch_signals(self) -> int:
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)  # the wake-up fd carries the news
        self._poller.register(read_fd, zmq.POLLIN)
        return read_fd

    # -- running ---------------------------------------------------------------------------

    def serve(self, plugins: Iterable[tuple[PluginInfo, dict[str, Any]]] = ()) -> None:
        """Start ``plugins`` (load, then activate), then serve until told to stop."""
        log.info("supervisor %s listening on %s", os.getpid(), self.client_endpoint)
        groups = self.workers.cgroups
        log.info("limits: rlimits and watchdog%s", " and a cgroup per worker"
                 if groups.available else f"; no cgroups ({groups.reason})")
        self.heartbeats.start()
        self.watchdog.start()
        if self.http is not None:
            self.http.start(self.rundir.control_endpoint, self.client_door.token)
        if self.systemd.watchdog_interval is not None:
            self._feed_systemd(self.systemd.watchdog_interval)
        self.startup.begin(plugins, self._started)
        try:
            while not self._done:
                self._poll_once()
        finally:
            self._close()

    def _poll_once(self) -> None:
        timers, forkserver = self.clock.timers, self.workers.forkserver
        due = min((d for d in (timers.next_due(), self.router.deadlines.next_due())
                   if d is not None), default=None)
        timeout = None if due is None else min(
            max(0, int((due - self.clock.now()) * 1000) + 1), _MAX_POLL_MS)
        if forkserver.has_news:  # read by a send that waited: no fd tells of it
            timeout = 0
        for source, _ in self._poller.poll(timeout):
            self._guarded(self._dispatch, source)
        if forkserver.has_news:
            self._guarded(self.workers.news)
        now = self.clock.now()
        self._guarded(self.router.expire, now)
        self._guarded(timers.run_due, now)

    def _dispatch(self, source: Any) -> None:
        """Hand one ready socket or fd to whoever reads it."""
        if source is self._control:
            self._drain(self._control, self.control_door)
        elif source is self._clients:
            self._drain(self._clients, self.client_door)
        elif source is self._workers:
            self._drain(self._workers, self.worker_door)
        elif source == self._signal_fd:
            self._signalled()
        elif source == self._parent_fd:
            self._poller.unregister(source)  # a pidfd stays readable: notice it once
            log.warning("the process that started this supervisor is gone; stopping")
            self.begin_shutdown()
        elif source == self.workers.forkserver.control_fd:
            self.workers.news()
        elif source == self.workers.forkserver.pidfd:
            self.workers.forkserver_died()
        elif source == self.services.fd:
            self.services.completed()
        elif source == self.output.fileno():
            self.output.ready()

    @staticmethod
    def _guarded(action: Callable[..., None], *args: Any) -> None:
        """Run one unit of loop work; a bug of ours in it is logged, not fatal to the loop."""
        try:
            action(*args)
        except Exception:
            log.exception("internal error in %s", getattr(action, "__name__", action))

    def _drain(self, sock: zmq.Socket[bytes], door: ClientDoor | WorkerDoor,
               budget: int = 256) -> None:
        """Read what is waiting (bounded, so one busy socket cannot starve the others)."""
        banned = door.offences.is_banned
        for _ in range(budget):
            try:
                identity, frame = socket_io.receive_routed(sock)
            except zmq.Again:
                return
            if banned(identity):
                continue
            if frame is None:
                self._offence(door, identity, "a message of more than one frame")
                continue
            try:
                record = codec.decode(frame)
            except ProtocolError as exc:
                self._offence(door, identity, f"a malformed frame ({exc.message})")
                continue
            try:
                door.received(identity, record)
            except RuntimeFailure as exc:
                self._offence(door, identity,
                              f"a {type(record).__name__} refused ({exc.message})")
            except Exception:  # a bug of ours: report it loudly, but keep serving the others
                log.exception("internal error while handling %s", type(record).__name__)

    def _offence(self, door: ClientDoor | WorkerDoor, identity: bytes, what: str) -> None:
        """Drop what a peer sent; past the offence limit, stop hearing it (``Offences``)."""
        count = door.offences.offend(identity, self.clock.now())
        if count <= offences.LOGGED:
            log.warning("dropped %s from %s", what, door.describe(identity))
        if door.offences.is_banned(identity):
            log.warning("%s sent %d refused records within %gs: no longer heard",
                        door.describe(identity), door.offences.limit, door.offences.window)
            door.banned(identity)

    def _signalled(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._signal_fd, 512)
        log.info("signal received: stopping")
        self.begin_shutdown()

    def _started(self) -> None:
        active = sum(slot.status == PluginState.ACTIVE for slot in self.slots.values())
        log.info("started: %d plugins active, %d not started", active,
                 len(self.startup.refused))
        self.systemd.notify("READY=1", f"STATUS={active} plugins active")

    def _feed_systemd(self, interval: float) -> None:
        self.systemd.notify("WATCHDOG=1")
        self.clock.at(self.clock.now() + interval, lambda: self._feed_systemd(interval))

    def begin_shutdown(self) -> None:
        """Unload every plugin, then leave the loop: dependents before their dependencies,
        plugins without that tie in parallel (``may_stop``).

        Bounded by about twice ``stop_timeout`` however many plugins are busy or stubborn:
        the orderly part of every stop (deactivate, shutdown, Stop) ends ``stop_timeout``
        from now at the latest (``Lifecycle.stops_end_by``; a dependency whose dependents took that
        long gets no orderly part), SIGTERM then, SIGKILL ``stop_timeout`` later. What is
        still running a moment after that (an operation that held its plugin) is killed
        with the fork server as the supervisor exits.
        """
        if self._stopping:
            return
        self._stopping = True
        self.systemd.notify("STOPPING=1")
        now, bound = self.clock.now(), self.config.stop_timeout
        self.lifecycle.stops_end_by = now + bound
        self.clock.at(now + 2 * bound + _SHUTDOWN_SLACK, self._force_done)
        self._unload_ready(set(), set())

    def _unload_ready(self, begun: set[str], ended: set[str]) -> None:
        """Begin unloading every plugin that may stop now; done once all have ended."""
        graph = {p: d for p, d in self.slots.graph().items() if p not in ended}
        if not graph:
            self._done = True
            return
        for plugin_id in may_stop(graph):
            if plugin_id in begun:
                continue
            begun.add(plugin_id)

            def unloaded(_ok: bool, _body: bytes, plugin_id: str = plugin_id) -> None:
                ended.add(plugin_id)  # unloaded, or failed to: it holds up nobody now
                self._unload_ready(begun, ended)

            self.lifecycle.unload(plugin_id, unloaded)

    def _force_done(self) -> None:
        log.error("orderly shutdown took too long; killing the remaining workers")
        self._done = True

    @staticmethod
    def _http_endpoints(address: tuple[str, int] | None) -> HttpEndpoints | None:
        if address is None:
            return None
        # Imported only when configured: the HTTP server and prometheus-client cost about
        # 30 ms of every cold start otherwise.
        from spec_kit_runtime.supervisor.ops.http_endpoints import HttpEndpoints
        try:
            return HttpEndpoints(*address)
        except OSError as exc:
            raise ConfigError(f"runtime.http: cannot listen on {address[0]}:{address[1]}: "
                              f"{exc.strerror}") from None

    def _about(self) -> About:
        """The supervisor's own part of ``status``."""
        forkserver = self.workers.forkserver
        return {
            "endpoint": self.client_endpoint,
            "uptime": round(self.clock.now() - self.started_at, 3),
            "forkserver_pid": forkserver.pid if forkserver.running else None,
            "start_method": self.config.start_method,
            "cgroups": self.workers.cgroups.describe(),
            "http": self.http.address if self.http is not None else None,
            "log_file": str(self.log_file) if self.log_file is not None else None,
        }

    def _close(self) -> None:
        if self.http is not None:
            self.http.stop()
        self.workers.close(timeout=2 * self.config.stop_timeout)
        self.services.close()  # before the sockets: queued calls are still answered
        self.output.close()
        signal.set_wakeup_fd(-1)
        for sock in (self._control, self._clients, self._workers):
            sock.close(0)
        self._context.term()
        for fd in (self._signal_fd, self._parent_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self.rundir.remove_address()
        self.systemd.close()
        log.info("supervisor stopped")

    # -- events between parts --------------------------------------------------------------

    def _worker_connected(self, slot: PluginSlot) -> None:
        """A worker proved its secret (the worker door): its spawn goes on."""
        self.lifecycle.worker_connected(slot)

    def _worker_ended(self, slot: PluginSlot, worker: WorkerProcess, reason: ExitReason
                      ) -> None:
        """A worker ended (the worker table): its connection and services go; if it is the
        plugin's current worker, the lifecycle records it, and the restart policy decides
        what follows an end on its own."""
        if worker.identity is not None:
            self.worker_door.forget(worker.identity)
        self.services.worker_ended(slot.plugin_id)
        if slot.worker is worker:
            crash = self.lifecycle.worker_exited(slot, reason)
            if crash is not None:
                self.recovery.worker_ended(slot, reason, crash)
