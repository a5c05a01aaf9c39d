"""Test plugin (trusted) that leaves a line in ``config["log"]`` for each lifecycle phase it
runs, raises in initialize (activate) while ``config["fail_flag"]``
(``config["fail_activate_flag"]``) names an existing file, and takes ``config["slow"]``
seconds in each of initialize and activate (and as long to be made, while a file
``slow-load`` is in its working directory, its data folder)."""

import os
import time
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class WitnessPlugin(PluginBase):
    def __init__(self) -> None:
        super().__init__()
        if os.path.exists("slow-load"):
            with open("slow-load") as seconds:
                time.sleep(float(seconds.read() or 0))

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
        time.sleep(config.get("slow", 0))
        if os.path.exists(config.get("fail_flag", "")):
            raise ValueError("initialize fails while the flag file exists")
        super().initialize(config)

    def activate(self) -> None:
        self._note("activate")
        time.sleep(self.config.get("slow", 0))
        if os.path.exists(self.config.get("fail_activate_flag", "")):
            raise RuntimeError("activate fails while the flag file exists")
        super().activate()

    def handle_message(self, message: Any) -> None:
        return None
