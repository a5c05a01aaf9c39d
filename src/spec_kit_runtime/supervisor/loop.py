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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from spec_kit_runtime.errors import ConfigError, EncodeError, ProtocolError, RuntimeFailure
from spec_kit_runtime.linux import cgroups
from spec_kit_runtime.linux.cgroups import Cgroups
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.data_dir import default_data_dir, plugin_data_dir
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.policy import offences
from spec_kit_runtime.policy.confinement import WorkerConfinement, plan
from spec_kit_runtime.policy.dependencies import may_stop
from spec_kit_runtime.policy.timers import Timers
from spec_kit_runtime.supervisor.host_services.dispatch import HostServices
from spec_kit_runtime.supervisor.ops.systemd_notify import SystemdNotifier
from spec_kit_runtime.wire import codec, curve, socket_io
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_runtime.wire.protocol import Record, Reply
from spec_kit_runtime.wire.rundir import RuntimeDir

from .client_door import ClientDoor
from .control import ControlOps
from .forkserver_link import ForkServerLink, SpawnAnswer
from .heartbeats import HeartbeatMonitor
from .lifecycle import Lifecycle
from .output_capture import OutputCapture
from .router import Router
from .slots import PluginSlot
from .startup import StartUp
from .watchdog import Watchdog
from .worker_door import WorkerDoor
from .worker_process import WorkerProcess

if TYPE_CHECKING:
    from spec_kit_runtime.supervisor.ops.http_endpoints import HttpEndpoints

log = logging.getLogger(__name__)
_MAX_POLL_MS = 60_000
_SHUTDOWN_SLACK = 1.0  # s past the last SIGKILL of a shutdown to see the workers' exits


@dataclass(frozen=True, slots=True)
class _Spawning:
    """A spawn asked of the fork server and not answered yet, and whom to tell."""

    slot: PluginSlot
    confinement: WorkerConfinement  # what the worker is asked to apply to itself
    groups: tuple[str, ...]
    started: Callable[[WorkerProcess], None]
    failed: Callable[[OSError], None]


class Supervisor:
    """Runs plugins in worker processes and routes their messages."""

    def __init__(self, config: RuntimeConfig, rundir: RuntimeDir,
                 parent_pid: int | None = None,
                 forkserver: ForkServerLink | None = None,
                 log_file: Path | None = None) -> None:
        """``forkserver``: one already started (``run`` starts it first, to overlap its
        imports with this process's); else one is started here. ``log_file``: where this
        supervisor logs, if not to stderr (a PluginContainer's own; shown in status)."""
        self.config = config
        self.log_file = log_file
        self._frame_limit = codec.receive_limit(config.max_message_bytes)
        self.http = self._http_endpoints(config.http)  # first: a busy port fails the start
        self.rundir = rundir
        self.services = HostServices(config, rundir.path, self.now)  # bad roots: before binding
        self.timers = Timers()
        self.router = Router(self)
        self.lifecycle = Lifecycle(self)
        self.control = ControlOps(self)
        self.heartbeats = HeartbeatMonitor(self)
        self.watchdog = Watchdog(self)
        self.startup = StartUp(self, ())
        self.started_at = self.now()
        self._lock_fd = rundir.lock()
        self._context = zmq.Context()
        self._workers = self._router_socket(rundir.workers_endpoint)
        rundir.share_workers_socket()
        self.server_key: str | None = None  # CURVE public key (Z85) of a tcp:// clients socket
        self._clients = self._router_socket(config.endpoint or rundir.clients_endpoint)
        self.client_endpoint: str = self._clients.getsockopt_string(zmq.LAST_ENDPOINT)  # port 0
        self._control = self._router_socket(rundir.control_endpoint)
        token = rundir.new_token()
        self.client_door = ClientDoor(self, token, self.send_client)
        self.control_door = ClientDoor(
            self, token, lambda identity, record: self._send(self._control, identity, record),
            control_only=True)
        self._poller = zmq.Poller()
        self._poller.register(self._control, zmq.POLLIN)  # first: answered before traffic
        self._poller.register(self._clients, zmq.POLLIN)
        self._poller.register(self._workers, zmq.POLLIN)
        self._poller.register(self.services.fd, zmq.POLLIN)
        self._workers_by_pid: dict[int, tuple[PluginSlot, WorkerProcess]] = {}
        self._spawning: dict[int, _Spawning] = {}  # by the fork server's tag
        self.output = OutputCapture(self.now)
        self._poller.register(self.output.fileno(), zmq.POLLIN)
        self.forkserver = forkserver or ForkServerLink(config.start_timeout)
        self.forkserver.spawn_timeout = config.start_timeout
        self.cgroups = Cgroups(config.cgroups)
        self.systemd = SystemdNotifier()
        self._watch_forkserver()
        self.worker_door = WorkerDoor(
            self, lambda identity, record: self._send(self._workers, identity, record))
        self._signal_fd = self._catch_signals()
        self._parent_fd = os.pidfd_open(parent_pid) if parent_pid else None
        if self._parent_fd is not None:
            self._poller.register(self._parent_fd, zmq.POLLIN)
        self._stopping = False
        self.stopping_by: float | None = None  # once shutting down: when every stop's orderly
        # part ends (worker_steps.begin_stop), SIGTERM then, SIGKILL stop_timeout later
        self._done = False
        self.peer_gone = False  # why the last failed send failed: the peer is gone (or full)
        # Clients may connect as soon as the sockets are bound (and `run` says ready).
        self.rundir.write_address(self.client_endpoint, os.getpid(), rundir.control_endpoint,
                                  self.server_key)

    @staticmethod
    def now() -> float:
        return time.monotonic()

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
        log.info("limits: rlimits and watchdog%s", " and a cgroup per worker"
                 if self.cgroups.available else f"; no cgroups ({self.cgroups.reason})")
        self.heartbeats.start()
        self.watchdog.start()
        if self.http is not None:
            self.http.start(self.rundir.control_endpoint, self.client_door.token)
        self.startup = StartUp(self, plugins, self._started)
        if self.systemd.watchdog_interval is not None:
            self._feed_systemd(self.systemd.watchdog_interval)
        self.startup.begin()
        try:
            while not self._done:
                self._poll_once()
        finally:
            self._close()

    def _poll_once(self) -> None:
        due = min((d for d in (self.timers.next_due(), self.router.deadlines.next_due())
                   if d is not None), default=None)
        timeout = None if due is None else min(max(0, int((due - self.now()) * 1000) + 1),
                                               _MAX_POLL_MS)
        if self.forkserver.has_news:  # read by a send that waited: no fd tells of it
            timeout = 0
        for source, _ in self._poller.poll(timeout):
            self._guarded(self._dispatch, source)
        if self.forkserver.has_news:
            self._guarded(self._forkserver_news)
        now = self.now()
        self._guarded(self.router.expire, now)
        self._guarded(self.timers.run_due, now)

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
        elif source == self.forkserver.control_fd:
            self._forkserver_news()
        elif source == self.forkserver.pidfd:
            self._forkserver_died()
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
        count = door.offences.offend(identity, self.now())
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
        active = sum(slot.status == "active" for slot in self.lifecycle.slots.values())
        log.info("started: %d plugins active, %d not started", active,
                 len(self.startup.refused))
        self.systemd.notify("READY=1", f"STATUS={active} plugins active")

    def _feed_systemd(self, interval: float) -> None:
        self.systemd.notify("WATCHDOG=1")
        self.timers.at(self.now() + interval, lambda: self._feed_systemd(interval))

    def begin_shutdown(self) -> None:
        """Unload every plugin, then leave the loop: dependents before their dependencies,
        plugins without that tie in parallel (``may_stop``).

        Bounded by about twice ``stop_timeout`` however many plugins are busy or stubborn:
        the orderly part of every stop (deactivate, shutdown, Stop) ends ``stop_timeout``
        from now at the latest (``stopping_by``; a dependency whose dependents took that
        long gets no orderly part), SIGTERM then, SIGKILL ``stop_timeout`` later. What is
        still running a moment after that (an operation that held its plugin) is killed
        with the fork server as the supervisor exits.
        """
        if self._stopping:
            return
        self._stopping = True
        self.systemd.notify("STOPPING=1")
        now, bound = self.now(), self.config.stop_timeout
        self.stopping_by = now + bound
        self.timers.at(now + 2 * bound + _SHUTDOWN_SLACK, self._force_done)
        self._unload_ready(set(), set())

    def _unload_ready(self, begun: set[str], ended: set[str]) -> None:
        """Begin unloading every plugin that may stop now; done once all have ended."""
        graph = {p: d for p, d in self.lifecycle.graph().items() if p not in ended}
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

    def _close(self) -> None:
        if self.http is not None:
            self.http.stop()
        for _, worker in self._workers_by_pid.values():
            worker.expected_exit = True
        # The fork server kills and reaps whatever is left below it, then exits.
        self.forkserver.stop(timeout=2 * self.config.stop_timeout)
        for _, worker in self._workers_by_pid.values():
            Cgroups.remove(worker.cgroups)
        self._workers_by_pid.clear()
        self.cgroups.close()
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

    # -- workers ---------------------------------------------------------------------------

    def _watch_forkserver(self) -> None:
        """Start the fork server unless it runs, and wait on it in the loop's poll."""
        if not self.forkserver.running:
            self.forkserver.start()
        self._poller.register(self.forkserver.control_fd, zmq.POLLIN)
        self._poller.register(self.forkserver.pidfd, zmq.POLLIN)

    def spawn_worker(self, slot: PluginSlot, started: Callable[[WorkerProcess], None],
                     failed: Callable[[OSError], None]) -> int:
        """Ask the fork server for the worker of ``slot`` without waiting: ``started`` (or
        ``failed``) is called from the loop when it answers. Returns the spawn's tag, for
        ``abandon_spawn``; OSError if it cannot even be asked."""
        if not self.forkserver.running:  # it died: a new one
            self._watch_forkserver()
        asked = plan(self.config.hardening_for(slot.plugin_id), slot.info.network, os.getuid())
        groups = self.cgroups.create(slot.plugin_id, slot.limits)
        try:
            tag = self.forkserver.request_spawn(self._bootstrap(slot, groups, asked),
                                                slot.info.start_method or self.config.start_method)
        except BaseException:
            Cgroups.remove(groups)
            raise
        self._spawning[tag] = _Spawning(slot, asked, groups, started, failed)
        return tag

    def abandon_spawn(self, tag: int) -> None:
        """Give up on a spawn not answered yet (its worker, if one comes, is killed)."""
        spawning = self._spawning.pop(tag, None)
        if spawning is not None:
            self.worker_door.drop_early(spawning.slot.plugin_id)
            self.forkserver.abandon(tag)
            self._remove_cgroups(spawning.groups)

    def _bootstrap(self, slot: PluginSlot, groups: tuple[str, ...], asked: WorkerConfinement
                   ) -> Bootstrap:
        assert slot.secret is not None
        owner = None if asked.uid is None or asked.gid is None else (asked.uid, asked.gid)
        data = plugin_data_dir(self.config.data_dir or default_data_dir(), slot.plugin_id, owner)
        return Bootstrap(
            endpoint=self.rundir.workers_endpoint, plugin_id=slot.plugin_id,
            secret=slot.secret, parent_pid=self.forkserver.pid,
            plugin_file=str(slot.info.path), entry_point=slot.info.entry_point,
            sandbox=slot.info.sandbox_enabled, scope=slot.scope.patterns,
            max_message_bytes=self.config.max_message_bytes,
            request_timeout=self.config.request_timeout, cgroups=groups,
            plugin_dir=str(slot.info.root), data_dir=str(data), landlock=asked.landlock,
            network=asked.network, own_network=asked.own_network, uid=asked.uid, gid=asked.gid,
            **slot.limits.rlimits(),
        )

    def _forkserver_news(self) -> None:
        for told in self.forkserver.news():
            if isinstance(told, SpawnAnswer):
                self._spawned(told)
            else:
                self._worker_ended(told.pid, told.returncode, None)

    def _spawned(self, answer: SpawnAnswer) -> None:
        spawning = self._spawning.pop(answer.tag, None)  # the link drops answers given up on
        if spawning is None:  # not expected: such a worker is nobody's
            log.error("internal error: an answer to spawn %d, not asked", answer.tag)
            if answer.pid:
                self.forkserver.signal(answer.pid, signal.SIGKILL)
                for fd in (answer.stdout, answer.stderr):
                    os.close(fd)
            return
        slot = spawning.slot
        if not answer.pid:
            self.worker_door.drop_early(slot.plugin_id)
            Cgroups.remove(spawning.groups)
            spawning.failed(OSError(f"the fork server could not start it: {answer.error}"))
            return
        worker = WorkerProcess(answer.pid, self.forkserver.signal, spawning.confinement,
                               spawning.groups)
        self._workers_by_pid[answer.pid] = (slot, worker)
        self.output.add(slot.plugin_id, slot.output, answer.stdout, answer.stderr)
        log.info("plugin %s: worker pid %d started", slot.plugin_id, answer.pid)
        spawning.started(worker)

    def _forkserver_died(self) -> None:
        """Its workers die with it (parent-death signal): each ends as a crash."""
        self._forkserver_news()
        self._poller.unregister(self.forkserver.control_fd)
        self._poller.unregister(self.forkserver.pidfd)
        code = self.forkserver.reap()
        # Taken first: ending a worker below may go on to a spawn, asked of the next one.
        pending, self._spawning = list(self._spawning.values()), {}
        log.error("the fork server exited (code %d); its workers are gone", code)
        for pid, (_, worker) in list(self._workers_by_pid.items()):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # its group, and with cgroups all it started:
            for member in cgroups.members(worker.cgroups):  # no fork server to do it now
                with contextlib.suppress(OSError):
                    os.kill(member, signal.SIGKILL)
            self._worker_ended(pid, -signal.SIGKILL, "the fork server exited")
        for spawning in pending:
            self.worker_door.drop_early(spawning.slot.plugin_id)
            Cgroups.remove(spawning.groups)
            spawning.failed(OSError("the fork server exited"))

    def _worker_ended(self, pid: int, returncode: int, cause: str | None) -> None:
        entry = self._workers_by_pid.pop(pid, None)
        if entry is None:
            return
        slot, worker = entry
        kind = None
        if (cause is None and returncode == -signal.SIGKILL and worker.cgroups
                and Cgroups.oom_kills(worker.cgroups)):
            cause, kind = (f"memory limit {slot.limits.memory_mb} MiB exceeded "
                           "(the kernel's OOM killer, in the worker's cgroup)"), "limit"
        self._remove_cgroups(worker.cgroups)
        reason = worker.ended(returncode, cause, kind)
        if worker.identity is not None:
            self.worker_door.forget(worker.identity)
        self.services.worker_ended(slot.plugin_id)
        if slot.worker is worker:
            self.lifecycle.worker_exited(slot, reason)

    def _remove_cgroups(self, groups: tuple[str, ...], tries: int = 20) -> None:
        """Remove an ended worker's groups, retrying while its last members exit."""
        if Cgroups.remove(groups):
            return
        if tries:
            self.timers.at(self.now() + 0.05, lambda: self._remove_cgroups(groups, tries - 1))
        else:
            log.warning("could not remove cgroups %s: still in use", ", ".join(groups))

    def worker_pids(self) -> list[int]:
        """Every running worker's pid."""
        return list(self._workers_by_pid)

    def send_worker(self, slot: PluginSlot, record: Record) -> bool:
        """Send to the plugin's worker; False when it cannot be reached."""
        if slot.identity is None:
            log.warning("plugin %s: no connected worker for %s", slot.plugin_id,
                        type(record).__name__)
            return False
        return self._send(self._workers, slot.identity, record)

    def send_client(self, identity: bytes, record: Record) -> bool:
        """Send to a client connection; False when it is gone or its queue is full."""
        return self._send(self._clients, identity, record)

    def _send(self, sock: zmq.Socket[bytes], identity: bytes, record: Record) -> bool:
        try:
            frame = codec.encode_within(record, self._frame_limit)
        except EncodeError as exc:  # e.g. a hook's joined results: answer with the error
            if not isinstance(record, Reply):
                log.warning("could not deliver %s: %s", type(record).__name__, exc.message)
                return False
            frame = codec.encode(Reply(record.cid, False, codec.pack_error(exc)))
        try:
            socket_io.send_routed(sock, identity, frame)
        except zmq.ZMQError as exc:  # peer gone (ROUTER_MANDATORY) or its queue is full
            self.peer_gone = exc.errno == zmq.EHOSTUNREACH
            log.warning("could not deliver %s: %s", type(record).__name__, exc.strerror)
            return False
        return True
