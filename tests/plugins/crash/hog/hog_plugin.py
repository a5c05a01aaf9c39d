"""Test plugin that overuses resources on request: memory, open files, CPU time."""

import os
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class HogPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="hog", version="1.0.0", author="tests", description="h")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command("hog:memory", self.memory)
        registry.register_command("hog:files", self.files)
        registry.register_command("hog:burn", self.burn)
        registry.register_command("hog:ping", lambda arguments, options: os.getpid())

    def memory(self, arguments: list[str], options: dict[str, Any]) -> int:
        hoard = bytearray(int(options["mb"]) * 1024 * 1024)
        return len(hoard)

    def files(self, arguments: list[str], options: dict[str, Any]) -> int:
        opened = []
        try:
            for _ in range(int(options["count"])):
                opened.append(open(os.devnull))  # noqa: SIM115 - held open on purpose
            return len(opened)
        finally:
            for handle in opened:
                handle.close()

    def burn(self, arguments: list[str], options: dict[str, Any]) -> None:
        while True:
            pass

    def handle_message(self, message: Any) -> None:
        return None
