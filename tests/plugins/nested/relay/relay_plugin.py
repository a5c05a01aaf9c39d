"""Test plugin whose handlers send messages of their own while other handlers wait.

``relay:forward`` sends ``Request(method=options["method"], params=options["params"])``
and returns the reply, so tests can nest sends in any shape.
"""

from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase, Request


class RelayPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="relay", version="1.0.0", author="tests", description="r")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        self.bus = registry.bus
        registry.register_command("relay:forward", self.forward)

    def forward(self, arguments: list[str], options: dict[str, Any]) -> Any:
        return self.bus.send(Request(method=options["method"], params=options.get("params", {}),
                                     timeout=options.get("timeout")))

    def handle_message(self, message: Any) -> None:
        return None
