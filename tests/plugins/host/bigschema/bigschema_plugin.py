"""Test plugin whose config schema cannot travel: too big (config ``{}``), or not plain
data while a file ``ODD`` lies beside this one (a Path, a tuple nested 300 deep)."""

from pathlib import Path
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase, PluginCapability


class BigSchemaPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="bigschema", version="1.0.0", author="t", description="d",
                               capabilities=[PluginCapability.VALIDATOR, "x-custom"])

    def get_config_schema(self) -> dict[str, Any]:
        if Path(__file__).with_name("ODD").exists():
            deep: Any = "x"
            for _ in range(300):
                deep = (deep,)
            return {"path": Path("/"), "deep": deep}
        return {"type": "object", "description": "y" * 200_000}

    def _validate_config(self, config: dict[str, Any]) -> None:
        pass

    def handle_message(self, message: Any) -> None:
        return None
