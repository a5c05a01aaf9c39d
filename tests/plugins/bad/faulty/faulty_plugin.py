"""Test plugin (sandboxed) that fails in the lifecycle phase its config names.

``{"fail_in": "initialize"}`` raises in initialize, ``"activate"`` in activate, and
``"register"`` subscribes outside its scope from ``register_services``.
"""

from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class FaultyPlugin(PluginBase):
    def __init__(self) -> None:
        super().__init__()
        self.fail_in = ""

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="faulty", version="1.0.0", author="tests", description="f")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def initialize(self, config: dict[str, Any]) -> None:
        self.fail_in = config.get("fail_in", "")
        if self.fail_in == "initialize":
            raise ValueError("boom in initialize: bad widget count")
        super().initialize(config)

    def activate(self) -> None:
        if self.fail_in == "activate":
            raise RuntimeError("boom in activate: no database")
        super().activate()

    def register_services(self, registry: Any) -> None:
        registry.register_command(registry.plugin_id + ":ok", self.ok)
        if self.fail_in == "register":
            registry.register_command("design:generate", self.ok)  # not in this scope

    def ok(self, arguments: list[str], options: dict[str, Any]) -> str:
        return "ok"

    def handle_message(self, message: Any) -> None:
        return None
