"""Test plugin (trusted) that leaves a line in ``config["log"]`` for each lifecycle phase it
runs, and raises in initialize while ``config["fail_flag"]`` names an existing file."""

import os
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class WitnessPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="witness", version="1.0.0", author="tests", description="w")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def _note(self, phase: str) -> None:
        with open(self.config["log"], "a") as log:
            log.write(f"{os.getpid()} {phase}\n")

    def initialize(self, config: dict[str, Any]) -> None:
        self.config = config
        self._note("initialize")
        if os.path.exists(config["fail_flag"]):
            raise ValueError("initialize fails while the flag file exists")
        super().initialize(config)

    def activate(self) -> None:
        self._note("activate")
        super().activate()

    def handle_message(self, message: Any) -> None:
        return None
