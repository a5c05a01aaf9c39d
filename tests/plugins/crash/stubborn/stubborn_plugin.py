"""Test plugin that resists stopping: it ignores SIGTERM, hangs in shutdown, and has a
child and a grandchild that ignore SIGTERM too. ``stubborn:family`` returns their pids.
"""

import os
import signal
import subprocess
import sys
import time
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase

_IGNORE_TERM_AND_WAIT = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "


class StubbornPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="stubborn", version="1.0.0", author="t", description="s")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def activate(self) -> None:
        super().activate()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = _IGNORE_TERM_AND_WAIT + "time.sleep(1000)"
        child = (_IGNORE_TERM_AND_WAIT + "import subprocess, sys; "
                 f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}]); "
                 "print(p.pid, flush=True); time.sleep(1000)")
        self.child = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE)
        self.grandchild = int(self.child.stdout.readline())

    def register_services(self, registry: Any) -> None:
        registry.register_command("stubborn:family", self.family)

    def family(self, arguments: list[str], options: dict[str, Any]) -> list[int]:
        return [os.getpid(), self.child.pid, self.grandchild]

    def shutdown(self) -> None:
        if self._config.get("hang_in_shutdown"):
            while True:
                time.sleep(0.05)
        super().shutdown()

    def handle_message(self, message: Any) -> None:
        return None
