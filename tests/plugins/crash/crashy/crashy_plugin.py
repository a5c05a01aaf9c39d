"""Test plugin that misbehaves mid-request: exits, segfaults or never returns.

Its commands are named after the plugin's id (``{id}:exit``, ``{id}:segv``, ``{id}:hang``,
``{id}:ping``), so one folder serves several copies with different ids. With the config
``{"exit_in": "activate"}`` the worker exits (code 4) in the middle of activation (with
``{"hang_in": "activate"}`` it never finishes activating; ``{"slow_activate": S}`` takes
S seconds to); with
``{"fail_start_marker": PATH}`` it does so only while PATH exists (a start that fails only
on restart). ``{id}:quit`` exits cleanly (code 0); ``{id}:spin`` holds the thread in a busy
loop; ``{id}:nap`` sleeps 10 ms and answers; ``{id}:sleep`` sleeps ``options["seconds"]`` and
answers ``{"slept": seconds}``; ``{id}:deaf`` ignores SIGTERM from then on and never returns.
``hang``, ``spin``, ``sleep`` and ``deaf`` touch ``options["marker"]``, when given, as they
begin.
"""

import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class CrashyPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="crashy", version="1.0.0", author="tests", description="c")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def activate(self) -> None:
        if self._config.get("slow_activate"):
            time.sleep(float(self._config["slow_activate"]))
        if self._config.get("hang_in") == "activate":
            while True:
                time.sleep(0.05)
        marker = self._config.get("fail_start_marker")
        if self._config.get("exit_in") == "activate" or (marker and Path(marker).exists()):
            os._exit(4)
        super().activate()

    def register_services(self, registry: Any) -> None:
        own = registry.plugin_id
        registry.register_command(f"{own}:exit", self.exit)
        registry.register_command(f"{own}:segv", self.segv)
        registry.register_command(f"{own}:hang", self.hang)
        registry.register_command(f"{own}:ping", self.ping)
        registry.register_command(f"{own}:quit", self.quit)
        registry.register_command(f"{own}:spin", self.spin)
        registry.register_command(f"{own}:nap", self.nap)
        registry.register_command(f"{own}:sleep", self.sleep)
        registry.register_command(f"{own}:deaf", self.deaf)
        registry.bus.subscribe(f"request:{own}:hang", self.hang_request)
        registry.bus.subscribe(f"request:{own}:sleep", self.sleep_request)

    def exit(self, arguments: list[str], options: dict[str, Any]) -> None:
        os._exit(3)

    def spin(self, arguments: list[str], options: dict[str, Any]) -> None:
        _began(options)
        while True:  # holds the thread without sleeping
            pass

    def nap(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.01)  # busy, but answering between calls
        return {"pong": os.getpid()}

    def sleep(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        _began(options)
        time.sleep(float(options["seconds"]))  # at least that long (a monotonic deadline)
        return {"slept": options["seconds"]}

    def deaf(self, arguments: list[str], options: dict[str, Any]) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _began(options)
        while True:
            time.sleep(0.05)

    def quit(self, arguments: list[str], options: dict[str, Any]) -> None:
        os._exit(0)

    def segv(self, arguments: list[str], options: dict[str, Any]) -> None:
        ctypes.string_at(0)

    def hang(self, arguments: list[str], options: dict[str, Any]) -> None:
        _began(options)
        while True:
            time.sleep(0.05)

    def sleep_request(self, message: Any) -> dict[str, Any]:
        time.sleep(float(message.params["seconds"]))
        return {"slept": message.params["seconds"]}

    def hang_request(self, message: Any) -> None:
        while True:
            time.sleep(0.05)

    def ping(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return {"pong": os.getpid()}

    def handle_message(self, message: Any) -> None:
        return None


def _began(options: dict[str, Any]) -> None:
    """Tell a test that the call is in progress (``options["marker"]``), if it asks."""
    if options.get("marker"):
        Path(options["marker"]).touch()
