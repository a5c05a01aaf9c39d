"""Test plugin whose processes try to outlive its worker. Each command returns the pid of a
process that ignores SIGTERM and sleeps: ``escapist:setsid`` a child in a session of its
own (out of the worker's process group); ``escapist:orphan`` a grandchild whose parent
exited (so it is orphaned, in the worker's session); ``escapist:orphan_setsid`` the same,
in a session of its own; ``escapist:orphan_hidden`` the same with an empty environment.
``escapist:ping`` answers with the worker's pid."""

import os
import subprocess
import sys
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase

_SLEEPER = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(1000)"


def _orphan(new_session: bool, hidden: bool = False) -> int:
    """Start a sleeper through a parent that exits at once; the sleeper's pid. ``hidden``:
    with an empty environment, so that nothing it inherited says whose it is."""
    env = "{}" if hidden else "None"
    parent = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {_SLEEPER!r}], "
              f"start_new_session={new_session}, stdout=subprocess.DEVNULL, "
              f"stderr=subprocess.DEVNULL, env={env}); print(p.pid)")
    return int(subprocess.run([sys.executable, "-c", parent], capture_output=True,
                              check=True, text=True).stdout)


class EscapistPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="escapist", version="1.0.0", author="t", description="e")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command("escapist:setsid", self.setsid)
        registry.register_command("escapist:orphan", lambda a, o: _orphan(False))
        registry.register_command("escapist:orphan_setsid", lambda a, o: _orphan(True))
        registry.register_command("escapist:orphan_hidden", lambda a, o: _orphan(True, True))
        registry.register_command("escapist:ping", lambda a, o: os.getpid())

    def setsid(self, arguments: list[str], options: dict[str, Any]) -> int:
        self.child = subprocess.Popen([sys.executable, "-c", _SLEEPER], start_new_session=True)
        return self.child.pid

    def handle_message(self, message: Any) -> None:
        return None
