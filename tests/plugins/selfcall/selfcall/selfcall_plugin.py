"""Calls its own command while registering its services (in the activate phase), and
tolerates a refusal: the call must not wait for the start it is part of."""

import time
from typing import Any

from spec_kit_contracts import Command, IPluginMetadata, PluginBase


class SelfCallPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="selfcall", version="1.0.0", author="r", description="s")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command("selfcall:ping", lambda a, o: "pong")
        registry.register_command("selfcall:seen", lambda a, o: self.seen)
        began = time.monotonic()
        try:
            outcome = repr(registry.bus.send(Command(command_name="selfcall:ping")))
        except Exception as exc:  # tolerated: warming up is optional
            outcome = f"{type(exc).__name__}: {exc}"
        self.seen = {"took": round(time.monotonic() - began, 2), "outcome": outcome[:200]}

    def handle_message(self, message: Any) -> None:
        return None
