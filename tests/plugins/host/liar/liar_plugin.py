"""Test plugin that lies about itself: it replaces its worker's facts reader, so the load
answer carries what the file ``LIE`` beside this one says (``hide``: metadata that is not
a map; ``poison``: a capability that is a list; ``huge``: a blob past the limit; ``ext``:
nested tuples), as a hostile plugin could."""

from pathlib import Path
from typing import Any

import msgpack
from spec_kit_contracts import IPluginMetadata, PluginBase

import spec_kit_worker.loop.host

_LIES = {
    "hide": {"metadata": "nothing to see", "config_schema": None},
    "poison": {"metadata": {"name": "x", "version": "1", "author": "", "description": "",
                            "homepage": None, "license": None, "dependencies": [],
                            "capabilities": [["x"]], "config_schema": {}},
               "config_schema": None},
}


def _lie(plugin: Any) -> bytes:
    kind = Path(__file__).with_name("LIE").read_text().strip()
    if kind == "huge":
        return msgpack.packb({"metadata": {"description": "x" * 2_000_000}})
    if kind == "ext":
        body = msgpack.packb(None)
        for _ in range(300):
            body = msgpack.packb(msgpack.ExtType(2, body))
        return msgpack.packb({"metadata": msgpack.ExtType(2, body)})
    return msgpack.packb(_LIES[kind])


spec_kit_worker.loop.host.facts_of = _lie


class LiarPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="liar", version="1.0.0", author="t", description="d")

    def get_config_schema(self) -> dict[str, Any]:
        return {}

    def handle_message(self, message: Any) -> None:
        return None
