"""Test plugin that, once active, holds all of its data limit (RLIMIT_DATA) but
``headroom_mb`` (as a plugin holding a large cache would), so that a message larger than
what is left kills its worker while the worker takes it off its socket, before any handler
runs. ``{id}:size`` answers the length of ``options["pad"]`` and the worker's pid."""

import mmap
import os
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase

_HELD: list[mmap.mmap] = []


class BallastPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="ballast", version="1.0.0", author="tests",
                               description="b")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def activate(self) -> None:
        try:
            while True:  # private anonymous pages count against RLIMIT_DATA
                _HELD.append(mmap.mmap(-1, 1 << 20, flags=mmap.MAP_PRIVATE))
        except OSError:
            pass
        for _ in range(min(int(self._config.get("headroom_mb", 8)), len(_HELD))):
            _HELD.pop().close()
        super().activate()

    def register_services(self, registry: Any) -> None:
        registry.register_command(f"{registry.plugin_id}:size", self.size)

    def handle_message(self, message: Any) -> None:
        return None

    def size(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return {"size": len(options.get("pad", "")), "pid": os.getpid()}
