"""Test plugin, trusted (no Python sandbox), with a secret in its code: a constant that no
other plugin's worker may find, in its memory or in any fd it holds (``SECRET``; the test
knows it, the snoop test plugin only its hash)."""

import os
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase

SECRET = "sk-live-TOPSECRET-0123456789-vault"


class VaultPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="vault", version="1.0.0", author="tests", description="v")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command(f"{registry.plugin_id}:ping", self.ping)

    def ping(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return {"pong": os.getpid()}

    def handle_message(self, message: Any) -> None:
        return None
