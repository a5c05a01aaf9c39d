"""Test plugin, trusted (no Python sandbox), that looks for fds it should not hold.

Its module's first statement records every open fd of its worker with what it is (the
earliest moment any of a plugin's code runs), and ``{id}:fds`` reports them as
``[fd, link, socket type or None]``: a test checks that its worker's return channel for the
plugin's code (a SOCK_SEQPACKET socket) and the memfd of its plugin's cached code (a link
``/memfd:...``) are closed by then.
"""

import os
import socket
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


def _open_fds() -> list[list[Any]]:
    found: list[list[Any]] = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own fd, closed by now
        kind = None
        if link.startswith("socket:"):
            probe = socket.socket(fileno=fd)  # learns the type from the fd
            kind = int(probe.type)
            probe.detach()  # not ours to close
        found.append([fd, link, kind])
    return found


AT_IMPORT = _open_fds()


class PeekerPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="peeker", version="1.0.0", author="tests", description="p")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command(f"{registry.plugin_id}:fds", self.fds)
        registry.register_command(f"{registry.plugin_id}:ping", self.ping)

    def fds(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return {"at_import": AT_IMPORT, "now": _open_fds()}

    def ping(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return {"pong": os.getpid()}

    def handle_message(self, message: Any) -> None:
        return None
