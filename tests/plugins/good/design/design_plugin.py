"""Test plugin (sandboxed): a command, a validator, a generator, a hook, an event log.

It also relays to ``audit`` from inside its worker (to show source stamping) and emits
its own events through ``registry.bus``.
"""

from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase, PluginCapability, Request


class DesignPlugin(PluginBase):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.bus: Any = None

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(
            name="design", version="1.2.0", author="tests", description="design documents",
            capabilities=[PluginCapability.GENERATOR, PluginCapability.VALIDATOR],
        )

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"enabled": {"type": "boolean"}}}

    def register_services(self, registry: Any) -> None:
        self.bus = registry.bus
        registry.register_command("design:generate", self.generate)
        registry.register_command("design:relay", self.relay)
        registry.register_command("design:emit", self.emit)
        registry.register_validator("python", self.validate_python)
        registry.register_generator("design", self.generate_design)
        registry.register_hook("audit", self.audit_hook, priority=90)
        self.bus.subscribe("event:design:*", self.record_event)
        self.bus.subscribe("request:design:events", self.read_events)

    def generate(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return {"doc": "# " + " ".join(arguments), "options": options}

    def validate_python(self, message: Any) -> dict[str, Any]:
        code = message.params.get("code", "")
        balanced = code.count("(") == code.count(")")
        return {"validator": "python", "valid": balanced, "source": message.source}

    def generate_design(self, message: Any) -> dict[str, Any]:
        return {"generated": "design", "title": message.params.get("title")}

    def audit_hook(self, message: Any) -> dict[str, Any]:
        return {"plugin": "design", "seen": message.params.get("n")}

    def record_event(self, message: Any) -> None:
        self.events.append(
            {"event": message.event_name, "data": message.event_data, "source": message.source}
        )

    def read_events(self, message: Any) -> list[dict[str, Any]]:
        return list(self.events)

    def relay(self, arguments: list[str], options: dict[str, Any]) -> Any:
        """Ask audit who is calling, while claiming to be somebody else."""
        return self.bus.send(Request(method="audit:whoami", source=options.get("claim", "")))

    def emit(self, arguments: list[str], options: dict[str, Any]) -> Any:
        return self.bus.emit(arguments[0], {"from": "design-worker"})

    def handle_message(self, message: Any) -> dict[str, Any]:
        return {"fallback": "design", "type": message.type.value, "payload": message.payload}
