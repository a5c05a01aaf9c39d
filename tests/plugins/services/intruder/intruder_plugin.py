"""Test plugin (trusted, so it can plant symbolic links and craft records) that tries to
reach what is not its own through the host services: other plugins' files and state,
anything outside its roots, and the supervisor itself with malformed calls.

Each command answers what happened instead of raising, so a test can read the refusal.
Its config names its own private folder (``private``), where it plants links.
"""

import os
from typing import Any

from spec_kit_contracts import IFileSystemService, IPluginMetadata, IStateService, PluginBase

from spec_kit_runtime.errors import RuntimeFailure
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import ServiceCall


def _outcome(call: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "result": call()}
    except RuntimeFailure as exc:
        return {"ok": False, "error": type(exc).__name__, "code": exc.code,
                "message": exc.message}


class IntruderPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="intruder", version="1.0.0", author="tests",
                               description="i")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        self.fs = registry.get_service(IFileSystemService)
        self.state = registry.get_service(IStateService)
        self.host = registry.bus._host
        registry.register_command("intruder:read", self.read)
        registry.register_command("intruder:list", self.listing)
        registry.register_command("intruder:write", self.write)
        registry.register_command("intruder:delete", self.delete)
        registry.register_command("intruder:plant", self.plant)
        registry.register_command("intruder:get_state", self.get_state)
        registry.register_command("intruder:raw", self.raw)
        registry.register_command("intruder:one_way", self.one_way)
        registry.register_command("intruder:local", self.local)
        registry.register_command("intruder:mkdir", self.mkdir)

    def read(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.fs.read_file(arguments[0]))

    def listing(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: [str(p) for p in self.fs.list_directory(arguments[0])])

    def write(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.fs.write_file(arguments[0], "overwritten by intruder"))

    def delete(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.fs.delete(arguments[0]))

    def plant(self, arguments: list[str], options: dict[str, Any]) -> str:
        """A symbolic link ``arguments[0]`` in its private folder, to ``arguments[1]``."""
        self.fs.create_directory(".")  # makes the private folder exist
        os.symlink(arguments[1], os.path.join(self._config["private"], arguments[0]))
        return "planted"

    def get_state(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.state.get_state(arguments[0], "<unset>"))

    def raw(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        """A ServiceCall as crafted: ``options["body"]`` (bytes) or ``options["args"]``."""
        service, method = arguments
        body = options["body"] if "body" in options else codec.pack_value(options["args"])
        host = self.host
        cid = host._new_cid()
        host._send(ServiceCall(cid, service, method, body))
        return _outcome(lambda: host._await_reply(cid, 5.0, "raw"))

    def mkdir(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.fs.create_directory(arguments[0]))

    def local(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        """Its own code, no service: read the file ``arguments[0]``, list ``arguments[1]``
        (both relative to its working directory, its data folder)."""
        def read_and_list() -> list[Any]:
            with open(arguments[0]) as file:
                return [file.read(), sorted(os.listdir(arguments[1]))]
        return _outcome(read_and_list)

    def one_way(self, arguments: list[str], options: dict[str, Any]) -> str:
        """``options["count"]`` malformed one-way calls (no answer comes back)."""
        for _ in range(int(options["count"])):
            self.host._send(ServiceCall(0, "logging", "log", b"\xc1"))
        return "sent"

    def handle_message(self, message: Any) -> None:
        return None
