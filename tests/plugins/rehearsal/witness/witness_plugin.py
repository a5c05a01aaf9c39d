"""Test plugin, trusted (no Python sandbox), that looks for what a spare's rehearsal might
have left in its worker: ``{id}:traces`` answers the modules and ``sys.path`` entries that
name a rehearsal (the worker host's own module aside), and the live plugin classes other
than its own."""

import gc
import os
import sys
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class WitnessPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="witness", version="1.0.0", author="tests", description="w")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def handle_message(self, message: Any) -> None:
        return None

    def register_services(self, registry: Any) -> None:
        registry.register_command(f"{registry.plugin_id}:traces", self.traces)

    def traces(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        gc.collect()
        classes = [obj.__name__ for obj in gc.get_objects()
                   if isinstance(obj, type) and issubclass(obj, PluginBase)
                   and obj not in (PluginBase, WitnessPlugin)]
        return {"pid": os.getpid(),
                "modules": [name for name in sys.modules  # but the worker's own module
                            if "rehearsal" in name and not name.startswith("spec_kit_worker.")],
                "path": [entry for entry in sys.path if "rehearsal" in entry],
                "classes": classes}
