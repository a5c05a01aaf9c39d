"""Test plugin whose manifest names a class the module does not define."""

from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class SomeOtherPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="no_entry", version="1.0.0", author="t", description="n")

    def get_config_schema(self) -> dict[str, Any]:
        return {}

    def handle_message(self, message: Any) -> None:
        return None
