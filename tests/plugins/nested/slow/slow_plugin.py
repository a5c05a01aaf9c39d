"""Test plugin answering ``request:{id}:wait`` after ``params.seconds``; one folder, many ids.

With ``params.marker`` it creates that file when it starts waiting, so a test knows the
request is in flight without sleeping.
"""

import time
from pathlib import Path
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class SlowPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="slow", version="1.0.0", author="tests", description="s")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        self.own = registry.plugin_id
        registry.bus.subscribe(f"request:{self.own}:wait", self.wait)

    def wait(self, request: Any) -> str:
        if request.params.get("marker"):
            Path(request.params["marker"]).touch()
        time.sleep(float(request.params.get("seconds", 0)))
        return f"{self.own} done"

    def handle_message(self, message: Any) -> None:
        return None
