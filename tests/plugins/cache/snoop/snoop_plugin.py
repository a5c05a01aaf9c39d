"""Test plugin, trusted (no Python sandbox), that looks for another plugin's compiled code
in its own worker: in the memfds it holds (at import, the earliest moment any of a
plugin's code runs, and later), in the fork server's code stores its worker inherited, and
anywhere in its readable memory (``{id}:look``, given a prefix, the length and the sha256
of what to find: it never holds the secret it looks for)."""

import gc
import hashlib
import os
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase

OWN = "snoop-own-marker-0451-in-its-code"  # what a look for its own code finds


def _memfds() -> list[str]:
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listing's own fd, closed by now
        if "memfd:" in link:
            found.append(link)
    return found


AT_IMPORT = _memfds()


def _copies(prefix: bytes, length: int, digest: str) -> int:
    """How many times what has this prefix, length and sha256 is in this process's memory."""
    with open("/proc/self/maps") as maps:
        regions = maps.read().splitlines()
    hits = 0
    with open("/proc/self/mem", "rb", 0) as memory:
        for region in regions:
            span, mode = region.split()[:2]
            low, high = (int(end, 16) for end in span.split("-"))
            if not mode.startswith("r") or high - low > 1 << 28:
                continue
            try:
                memory.seek(low)
                data = memory.read(high - low)
            except OSError:
                continue  # [vvar] and the like
            at = data.find(prefix)
            while at != -1:
                if hashlib.sha256(data[at:at + length]).hexdigest() == digest:
                    hits += 1
                at = data.find(prefix, at + 1)
    return hits


def _stores() -> list[int]:
    """The entries of every code store (the fork server's) this worker inherited."""
    gc.unfreeze()  # the fork server froze what it had made before it served
    return [len(found) for found in gc.get_objects() if type(found).__name__ == "CodeStore"]


class SnoopPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="snoop", version="1.0.0", author="tests", description="s")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command(f"{registry.plugin_id}:look", self.look)
        registry.register_command(f"{registry.plugin_id}:ping", self.ping)

    def look(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        prefix = options["prefix"].encode()
        return {"pid": os.getpid(), "memfds_at_import": AT_IMPORT, "memfds_now": _memfds(),
                "stores": _stores(),
                "copies": _copies(prefix, options["length"], options["sha256"])}

    def ping(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return {"pong": os.getpid()}

    def handle_message(self, message: Any) -> None:
        return None
