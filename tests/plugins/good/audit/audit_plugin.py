"""Test plugin (sandboxed): a high-priority hook, an event recorder and a "who am I".

It records every ``event:design:*`` and ``event:system:*`` it receives, with the source
the supervisor stamped on it, and ``request:audit:seen`` reads the record back.
"""

from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class AuditPlugin(PluginBase):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="audit", version="0.3.1", author="tests", description="a")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_hook("audit", self.audit_hook, priority=10)
        registry.bus.subscribe("event:design:*", self.record)
        registry.bus.subscribe("event:system:*", self.record)
        registry.bus.subscribe("request:audit:seen", self.read_seen)
        registry.bus.subscribe("request:audit:whoami", self.whoami)

    def audit_hook(self, message: Any) -> dict[str, Any]:
        return {"plugin": "audit", "seen": message.params.get("n")}

    def record(self, message: Any) -> None:
        self.seen.append(
            {"event": message.event_name, "data": message.event_data, "source": message.source}
        )

    def read_seen(self, message: Any) -> list[dict[str, Any]]:
        return list(self.seen)

    def whoami(self, message: Any) -> dict[str, Any]:
        return {"source": message.source}

    def handle_message(self, message: Any) -> None:
        return None
