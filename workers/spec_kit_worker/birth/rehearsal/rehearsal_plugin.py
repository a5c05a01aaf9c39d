"""The plugin a spare rehearses with (``birth.rehearsal``): ours, the least a plugin is,
with one command, as most have."""

from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class RehearsalPlugin(PluginBase):  # type: ignore[misc]  # the contracts have no types
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="rehearsal", version="1.0.0", author="spec-kit-runtime",
                               description="a spare's rehearsal")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command(f"{registry.plugin_id}:rehearse", self.rehearse)

    def rehearse(self, arguments: list[str], options: dict[str, Any]) -> None:
        return None

    def handle_message(self, message: Any) -> None:
        return None
