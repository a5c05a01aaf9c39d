"""Client control operations: status, load, activate, deactivate, unload, shutdown.

The supervisor re-validates every manifest a client hands it: a PluginInfo built or
altered in the caller's process is never trusted as is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import ProtocolError, RuntimeFailure
from .manifest import parse_manifest_data
from .protocol import Control
from .slots import Responder
from .wire import pack_value, unpack_value

if TYPE_CHECKING:
    from .supervisor import Supervisor


class ControlOps:
    """Dispatches Control records by their ``op``."""

    def __init__(self, hub: Supervisor) -> None:
        self.hub = hub
        self._ops: dict[str, Callable[[dict[str, Any], Responder], None]] = {
            "ping": lambda _args, respond: respond(True, pack_value("pong")),
            "status": self._status,
            "load": self._load,
            "activate": self._plugin_op(hub.lifecycle.activate),
            "deactivate": self._plugin_op(hub.lifecycle.deactivate),
            "unload": self._plugin_op(hub.lifecycle.unload),
            "shutdown": self._shutdown,
        }

    def handle(self, control: Control, respond: Responder) -> None:
        try:
            op = self._ops.get(control.op)
            if op is None:
                raise ProtocolError(f"unknown control operation '{control.op}'")
            args = unpack_value(control.body) or {}
            if not isinstance(args, dict):
                raise ProtocolError(f"arguments of '{control.op}' must be a map")
            op(args, respond)
        except RuntimeFailure as exc:
            respond(False, pack_value(exc.to_data()))

    def _status(self, _args: dict[str, Any], respond: Responder) -> None:
        hub = self.hub
        now = hub.now()
        respond(True, pack_value({
            "supervisor": {
                "pid": os.getpid(), "version": __version__, "endpoint": hub.client_endpoint,
                "uptime": round(now - hub.started_at, 3),
                "plugins": len(hub.lifecycle.slots),
            },
            "plugins": [slot.snapshot(now) | {"subscriptions": hub.router.table.patterns_of(pid)}
                        for pid, slot in hub.lifecycle.slots.items()],
        }))

    def _load(self, args: dict[str, Any], respond: Responder) -> None:
        manifest, source, root = args.get("manifest"), args.get("source"), args.get("root")
        config = args.get("config") or {}
        if not isinstance(source, str) or not isinstance(root, str):
            raise ProtocolError("load needs 'manifest', 'source' and 'root'")
        if not isinstance(config, dict):
            raise ProtocolError("a plugin config must be a map")
        info = parse_manifest_data(manifest, Path(source), Path(root))
        self.hub.lifecycle.load(info, config, respond)

    def _plugin_op(self, op: Callable[[str, Responder], None]
                   ) -> Callable[[dict[str, Any], Responder], None]:
        def run(args: dict[str, Any], respond: Responder) -> None:
            plugin_id = args.get("plugin")
            if not isinstance(plugin_id, str):
                raise ProtocolError("missing 'plugin'")
            op(plugin_id, respond)
        return run

    def _shutdown(self, _args: dict[str, Any], respond: Responder) -> None:
        respond(True, pack_value(True))
        self.hub.begin_shutdown()
