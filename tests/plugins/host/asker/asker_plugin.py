"""Test plugin that asks its host: ``asker:ask`` sends ``Request(method=...)`` (the
method in its arguments, ``core:check`` by default; its options are the params, and
``timeout`` among them the request's) and answers with what came back;
``asker:announce`` emits ``event:asker:announced``. While a file ``SCHEMA_RAISES`` lies
beside this one, its ``get_config_schema()`` raises (and its config goes unchecked)."""

from pathlib import Path
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase, PluginCapability, Request


class AskerPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(
            name="asker", version="1.3.0", author="tests", description="asks its host",
            homepage="https://example.invalid/asker", license="MIT",
            capabilities=[PluginCapability.COMMAND, PluginCapability.EVENT_LISTENER])

    def get_config_schema(self) -> dict[str, Any]:
        if Path(__file__).with_name("SCHEMA_RAISES").exists():
            raise RuntimeError("no schema today")
        return {"type": "object", "properties": {"loud": {"type": "boolean"}}}

    def _validate_config(self, config: dict[str, Any]) -> None:
        pass

    def handle_message(self, message: Any) -> None:
        return None

    def register_services(self, registry: Any) -> None:
        self.bus = registry.bus
        registry.register_command("asker:ask", self.ask)
        registry.register_command("asker:announce", self.announce)

    def ask(self, arguments: list[str], options: dict[str, Any]) -> Any:
        method = arguments[0] if arguments else "core:check"
        answer = self.bus.send(Request(method=method, params=options,
                                       timeout=options.get("timeout")))
        if hasattr(answer, "success"):  # a contracts Response
            return {"type": type(answer).__name__, "success": answer.success,
                    "result": answer.result, "error": answer.error}
        return {"type": type(answer).__name__, "value": answer}

    def announce(self, arguments: list[str], options: dict[str, Any]) -> int:
        return int(self.bus.emit("asker:announced", {"words": arguments}))
