"""Client control operations: status, load, activate, deactivate, unload, shutdown.

The supervisor re-validates every manifest a client hands it: a PluginInfo built or
altered in the caller's process is never trusted as is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from spec_kit_runtime._version import __version__
from spec_kit_runtime.errors import ProtocolError, RoutingError, RuntimeFailure, ScopeError
from spec_kit_runtime.plugins.facts import MAX_FACTS_ASKED
from spec_kit_runtime.plugins.manifest_fields import parse_manifest_data
from spec_kit_runtime.policy.health import PluginCondition, assess
from spec_kit_runtime.policy.patterns import pattern_problem
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.codec import pack_error, pack_value, unpack_value
from spec_kit_runtime.wire.protocol import Control, ControlOp

from .operation import STARTING
from .replies import caller_key
from .slots import PluginSlot, Responder, SlotTable

if TYPE_CHECKING:
    from .lifecycle import Lifecycle
    from .ports import Clock
    from .router import Router
    from .startup import StartUp

log = logging.getLogger(__name__)


class About(TypedDict):
    """The supervisor's own part of ``status``, as the loop knows it."""

    endpoint: str
    uptime: float
    forkserver_pid: int | None
    start_method: str
    cgroups: dict[str, Any]
    http: str | None
    log_file: str | None


def _still_failed(slot: PluginSlot) -> bool:
    """A start that failed and was not fixed since (an error with no target says so itself)."""
    return slot.status != PluginState.ACTIVE and not (
        slot.status == PluginState.ERROR and slot.target is None)


class ControlOps:
    """Dispatches Control records by their ``op``."""

    def __init__(self, slots: SlotTable, lifecycle: Lifecycle, router: Router,
                 startup: StartUp, clock: Clock, about: Callable[[], About],
                 shutdown: Callable[[], None]) -> None:
        """``about``: the supervisor's own part of ``status``; ``shutdown``: begins the
        supervisor's shutdown."""
        self.slots, self.lifecycle, self.router = slots, lifecycle, router
        self.startup, self.clock, self._about, self._begin_shutdown = (
            startup, clock, about, shutdown)
        self._ops: dict[str, Callable[[bytes, dict[str, Any], Responder], None]] = {
            ControlOp.PING: lambda _peer, _args, respond: respond(True, pack_value("pong")),
            ControlOp.STATUS: self._status,
            ControlOp.HEALTH: self._health,
            ControlOp.PLUGINS: self._plugins,
            ControlOp.LOAD: self._load,
            ControlOp.ACTIVATE: self._plugin_op(lifecycle.activate),
            ControlOp.DEACTIVATE: self._plugin_op(lifecycle.deactivate),
            ControlOp.UNLOAD: self._plugin_op(lifecycle.unload),
            ControlOp.STOP: self._plugin_op(lifecycle.stop),
            ControlOp.START: self._plugin_op(lifecycle.start),
            ControlOp.RESTART: self._plugin_op(lifecycle.restart),
            ControlOp.SHUTDOWN: self._shutdown,
            ControlOp.SUBSCRIBE: self._subscribe,
            ControlOp.UNSUBSCRIBE: self._unsubscribe,
        }

    def handle(self, peer: bytes, control: Control, respond: Responder) -> None:
        """Run ``control`` for the client connection ``peer``; errors become error replies."""
        try:
            op = self._ops.get(control.op)
            if op is None:
                raise ProtocolError(f"unknown control operation '{control.op}'")
            args = unpack_value(control.body)
            if args is None:  # no arguments
                args = {}
            if not isinstance(args, dict):
                raise ProtocolError(f"arguments of '{control.op}' must be a map")
            op(peer, args, respond)
        except RuntimeFailure as exc:
            respond(False, pack_error(exc))
        except Exception as exc:  # a bug of ours: the client gets an answer, not a wait
            log.exception("internal error in control operation %r", control.op)
            respond(False, pack_error(RuntimeFailure(
                f"internal error in '{control.op}': {type(exc).__name__}: {exc}"[:500])))

    def _status(self, _peer: bytes, _args: dict[str, Any], respond: Responder) -> None:
        from spec_kit_runtime.wire.status import (  # here: see its docs
            Status,
            SupervisorStatus,
            Totals,
            to_data,
        )

        now = self.clock.now()
        figures = [slot.calls.figures() for slot in self.slots.values()]
        respond(True, pack_value(to_data(Status(
            SupervisorStatus(
                pid=os.getpid(), version=__version__, plugins=len(self.slots),
                totals=Totals(
                    handled=sum(f.handled for f in figures),
                    errors=sum(f.errors for f in figures),
                    in_flight=sum(f.in_flight for f in figures),
                    restarts=sum(s.restarts for s in self.slots.values()),
                ),
                **self._about(),
            ),
            tuple(slot.snapshot(now, tuple(self.router.table.patterns_of(pid)),
                                self.router.waits.count(pid))
                  for pid, slot in self.slots.items()),
        ))))

    def _plugins(self, _peer: bytes, args: dict[str, Any], respond: Responder) -> None:
        """Each plugin with its state, whether a load of it has succeeded (``loaded``) and
        the generation of its facts; the facts themselves (plugins/facts.py) only for the ids
        in ``facts``: a caller keeps them until their generation changes."""
        from spec_kit_runtime.wire.status import PluginEntry, to_data  # here: see its docs

        wanted = args.get("facts") or []
        if not isinstance(wanted, list) or len(wanted) > MAX_FACTS_ASKED:
            raise ProtocolError(f"'facts' must be a list of at most {MAX_FACTS_ASKED} ids")
        asked = {plugin_id for plugin_id in wanted if isinstance(plugin_id, str)}
        respond(True, pack_value({
            plugin_id: to_data(PluginEntry(
                PluginState.LOADING if slot.busy in STARTING else slot.status, slot.loaded,
                slot.facts_generation, slot.facts if plugin_id in asked else None))
            for plugin_id, slot in self.slots.items()}))

    def _health(self, _peer: bytes, _args: dict[str, Any], respond: Responder) -> None:
        from spec_kit_runtime.wire.status import to_data  # here: see its docs

        now = self.clock.now()
        slots = self.slots
        plugins = [PluginCondition(
            slot.plugin_id, slot.status, slot.target, slot.restarts,
            now - slot.started_at if slot.started_at is not None and slot.worker else None,
            slot.tracker.policy.stable_after, slot.last_exit, slot.last_error,
            recovering=slot.restart_timer is not None or slot.busy is not None,
        ) for slot in slots.values()]
        startup = self.startup
        not_started = {plugin_id: why for plugin_id, why in
                       (startup.refused | startup.failed).items()
                       if plugin_id not in slots or _still_failed(slots[plugin_id])}
        respond(True, pack_value(to_data(assess(plugins, sorted(startup.pending),
                                                not_started))))

    def _load(self, _peer: bytes, args: dict[str, Any], respond: Responder) -> None:
        manifest, source, root = args.get("manifest"), args.get("source"), args.get("root")
        config = args.get("config") or {}
        if not isinstance(source, str) or not isinstance(root, str):
            raise ProtocolError("load needs 'manifest', 'source' and 'root'")
        if not isinstance(config, dict):
            raise ProtocolError("a plugin config must be a map")
        info = parse_manifest_data(manifest, Path(source), Path(root))
        self.lifecycle.load(info, config, respond)

    def _plugin_op(self, op: Callable[[str, Responder], None]
                   ) -> Callable[[bytes, dict[str, Any], Responder], None]:
        def run(_peer: bytes, args: dict[str, Any], respond: Responder) -> None:
            plugin_id = args.get("plugin")
            if not isinstance(plugin_id, str):
                raise ProtocolError("missing 'plugin'")
            op(plugin_id, respond)
        return run

    def _shutdown(self, _peer: bytes, _args: dict[str, Any], respond: Responder) -> None:
        respond(True, pack_value(True))
        self._begin_shutdown()

    def _subscribe(self, peer: bytes, args: dict[str, Any], respond: Responder) -> None:
        """A handler living in the caller: with a loaded plugin's scope, as the host
        application (``host``: any address; the token holder is trusted, see SECURITY.md),
        or else an event follower."""
        plugin_id, pattern = args.get("plugin"), args.get("pattern")
        sub_id, priority = args.get("sub_id"), args.get("priority", 50)
        host = args.get("host", False)
        if not (isinstance(plugin_id, str) and isinstance(pattern, str)
                and type(sub_id) is int and type(priority) is int and type(host) is bool):
            raise ProtocolError("subscribe needs plugin, pattern, sub_id and priority")
        problem = pattern_problem(pattern)
        if problem:
            raise RoutingError(f"invalid pattern: {problem}")
        if plugin_id:
            self.slots.require(plugin_id).scope.check_subscribe(pattern)
        elif not host and not pattern.startswith("event:"):  # a follower watches events
            raise ScopeError(f"a client may subscribe to events only, not '{pattern}'",
                             pattern=pattern)
        self.router.serve_caller(peer, sub_id, pattern, priority, bool(plugin_id) or host)
        respond(True, pack_value(True))

    def _unsubscribe(self, peer: bytes, args: dict[str, Any], respond: Responder) -> None:
        sub_id = args.get("sub_id")
        if type(sub_id) is not int:
            raise ProtocolError("unsubscribe needs sub_id")
        self.router.table.remove(caller_key(peer), sub_id)
        respond(True, pack_value(True))
