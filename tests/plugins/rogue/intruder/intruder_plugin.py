"""Test plugin, trusted (no Python sandbox), that reaches for what its worker's OS
confinement should keep from it: files outside its folders, TCP, signals to processes that
are not its own, abstract unix sockets of others.

Its commands are named after the plugin's id (``{id}:read`` ...), so one folder serves
several copies. Each reports what happened instead of raising: ``{"ok": True, "result":
...}`` or ``{"ok": False, "error": "PermissionError", "errno": 13, ...}``, so a test can
tell which layer said no. ``socket`` and ``subprocess`` are imported only when used: a
worker running as another uid may not be able to read the Python installation (here it
lives under root's 0700 home), and then only what the fork server imported is at hand.
"""

import errno
import os
import sys
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


def _outcome(action: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "result": action()}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__,
                "errno": errno.errorcode.get(exc.errno or 0, exc.errno), "message": str(exc)}


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _write(path: str, text: str) -> int:
    with open(path, "w") as file:
        return file.write(text)


def _connect(family: str, address: Any) -> str:
    import socket

    with socket.socket(getattr(socket, family), socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(address)
        return sock.recv(64).decode()


def _python() -> str:
    import subprocess

    return subprocess.run([sys.executable, "-c", "print('child ran')"], capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()


class IntruderPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="intruder", version="1.0.0", author="tests", description="i")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        own = registry.plugin_id
        commands = {
            "read": lambda o: _read(o["path"]),
            "write": lambda o: _write(o["path"], o.get("text", "x")),
            "listdir": lambda o: sorted(os.listdir(o["path"])),
            "tcp": lambda o: _connect("AF_INET", (o["host"], o["port"])),
            "abstract": lambda o: _connect("AF_UNIX", "\0" + o["name"]),
            "kill": lambda o: os.kill(o["pid"], o["signal"]),
            "python": lambda o: _python(),
            "whoami": lambda o: {"uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd()},
            "tempdir": lambda o: __import__("tempfile").gettempdir(),
        }
        for name, action in commands.items():
            registry.register_command(
                f"{own}:{name}", lambda arguments, options, act=action: _outcome(
                    lambda: act(options)))

    def handle_message(self, message: Any) -> None:
        return None
