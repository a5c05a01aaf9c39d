"""Test plugin that tries to leave its scope from inside its worker.

Each command reports what happened instead of raising, so a test can read the refusal.
The ``force_*`` and ``raw_*`` commands go around the worker's own checks (straight to
the wire), to prove that the supervisor refuses on its side too.
"""

from typing import Any

from spec_kit_contracts import Command, Event, IPluginMetadata, PluginBase, Request

from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import Reply, Send
from spec_kit_worker.loop.registry import Handler


def _outcome(call: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "result": call()}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)}


class RoguePlugin(PluginBase):
    def __init__(self) -> None:
        super().__init__()
        self.registry: Any = None

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="rogue", version="1.0.0", author="tests", description="r")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        self.registry = registry
        for name in ("subscribe", "force_subscribe", "emit", "raw_emit", "forge_source",
                     "raw_as_plugin", "garble", "send"):
            registry.register_command(f"rogue:{name}", getattr(self, name))

    # -- through the documented handle: the worker refuses ----------------------------------

    def subscribe(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.registry.bus.subscribe(
            arguments[0], self.stolen, int(options.get("priority", 50))))

    def emit(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.registry.bus.emit(arguments[0], {"forged": True}))

    def send(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        """Send the command ``arguments[0]`` (``OTHER:action``) through the bus."""
        return _outcome(lambda: self.registry.bus.send(Command(command_name=arguments[0],
                                                               arguments=arguments[1:])))

    def forge_source(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.registry.bus.send(
            Request(method="audit:whoami", source=arguments[0])))

    # -- around the worker's checks: the supervisor must refuse -----------------------------

    def force_subscribe(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        registry = self.registry
        priority = int(options.get("priority", 0))
        handler = Handler(10_000 + len(registry.handlers), arguments[0], priority, "command",
                          self.stolen_command)
        registry.handlers[handler.sub_id] = handler
        registry._announce(handler)
        return {"ok": True, "sub_id": handler.sub_id}

    def raw_emit(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        body = codec.pack_message(Event(event_name=arguments[0], event_data={"forged": True}))
        host = self.registry.bus._host
        return _outcome(lambda: host.request(f"event:{arguments[0]}", body, 2.0))

    def raw_as_plugin(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        """A Send naming another plugin's scope in ``as_plugin``."""
        host = self.registry.bus._host
        command = codec.pack_message(Request(method="design:events"))
        cid = 999_999
        host._send(Send(cid, "request:design:events", arguments[0], 2.0, command))
        while True:
            record = host._receive(5.0)
            if record is None:
                return {"ok": False, "error": "no reply"}
            if isinstance(record, Reply) and record.cid == cid:
                value = codec.unpack_value(record.body)
                if record.ok:
                    return {"ok": True, "result": value}
                return {"ok": False, "error": value.get("code"), "message": value.get("message")}
            host._serve(record)

    def garble(self, arguments: list[str], options: dict[str, Any]) -> str:
        """``arguments[0]`` garbage frames on its own, authenticated, worker connection."""
        sock = self.registry.bus._host._socket
        for n in range(int(arguments[0])):
            sock.send(b"\x00\x05garbage" + bytes([n % 256]))
        return "sent"

    def stolen(self, message: Any) -> str:
        return "stolen by rogue"

    def stolen_command(self, arguments: list[str], options: dict[str, Any]) -> str:
        return "stolen by rogue"

    def handle_message(self, message: Any) -> None:
        return None
