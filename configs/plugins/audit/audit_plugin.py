"""Audit trail: a `hook:post_save` handler plus event subscriptions, queried by request."""

from typing import Any, Dict, List, Optional

from spec_kit_contracts import IPluginMetadata, PluginBase, PluginCapability

MAX_ENTRIES = 1000


class AuditPlugin(PluginBase):
    """Keeps the last entries in memory; `request:audit:entries` returns them."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: List[Dict[str, Any]] = []

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(
            name="audit", version="1.0.0", author="Spec-Kit Team", description="Audit trail",
            capabilities=[PluginCapability.HOOK, PluginCapability.EVENT_LISTENER],
        )

    def get_config_schema(self) -> Dict[str, Any]:
        return {"type": "object", "properties": {}}

    def register_services(self, registry: Any) -> None:
        registry.register_hook("post_save", self.on_post_save, priority=90)
        registry.bus.subscribe("event:design:*", self.on_event)
        registry.bus.subscribe("event:system:*", self.on_event)

    def on_post_save(self, message: Any) -> Dict[str, Any]:
        self._record("post_save", message.source, message.params)
        return {"audited": True}

    def on_event(self, event: Any) -> None:
        self._record(event.event_name, event.source, event.event_data)

    def handle_message(self, message: Any) -> Optional[Dict[str, Any]]:
        """`request:audit:entries` (params.limit) returns the newest entries."""
        limit = int(message.payload.get("params", {}).get("limit", 20))
        return {"entries": self.entries[-limit:], "total": len(self.entries)}

    def _record(self, what: str, source: str, data: Any) -> None:
        self.entries.append({"what": what, "source": source, "data": data})
        del self.entries[:-MAX_ENTRIES]
