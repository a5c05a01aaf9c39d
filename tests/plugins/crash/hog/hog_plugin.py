"""Test plugin that overuses resources on request: memory, open files, CPU time, and what
only a watchdog over the process tree sees: a spinning thread, a process swarm, a child
hoarding memory; and output: ``hog:print`` a text to stdout and stderr, ``hog:flood``
megabytes of lines; ``hog:endless_thread`` a non-daemon thread that never ends;
``hog:memfd`` megabytes of shared memory, which only a cgroup counts. Children
sleep until killed with the worker's process group."""

import os
import subprocess
import sys
import threading
import time
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginBase


class HogPlugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="hog", version="1.0.0", author="tests", description="h")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        registry.register_command("hog:memory", self.memory)
        registry.register_command("hog:files", self.files)
        registry.register_command("hog:burn", self.burn)
        registry.register_command("hog:ping", lambda arguments, options: os.getpid())
        registry.register_command("hog:spin_thread", self.spin_thread)
        registry.register_command("hog:swarm", self.swarm)
        registry.register_command("hog:child_memory", self.child_memory)
        registry.register_command("hog:print", self.print_text)
        registry.register_command("hog:flood", self.flood)
        registry.register_command("hog:endless_thread", self.endless_thread)
        registry.register_command("hog:memfd", self.memfd)

    def memory(self, arguments: list[str], options: dict[str, Any]) -> int:
        hoard = bytearray(int(options["mb"]) * 1024 * 1024)
        return len(hoard)

    def files(self, arguments: list[str], options: dict[str, Any]) -> int:
        opened = []
        try:
            for _ in range(int(options["count"])):
                opened.append(open(os.devnull))  # noqa: SIM115 - held open on purpose
            return len(opened)
        finally:
            for handle in opened:
                handle.close()

    def burn(self, arguments: list[str], options: dict[str, Any]) -> None:
        while True:
            pass

    def spin_thread(self, arguments: list[str], options: dict[str, Any]) -> str:
        def spin() -> None:
            while True:
                pass

        threading.Thread(target=spin, daemon=True).start()
        return "spinning"  # the plugin's own thread stays free: heartbeats keep coming

    def swarm(self, arguments: list[str], options: dict[str, Any]) -> list[int]:
        return [self._child("import time; time.sleep(1000)").pid
                for _ in range(int(options["count"]))]

    def child_memory(self, arguments: list[str], options: dict[str, Any]) -> list[int]:
        mb = int(options["mb"])  # each child, under the inherited RLIMIT_DATA; together over
        code = (f"import time; x = bytearray({mb} << 20); x[::4096] = b'1' * len(x[::4096]); "
                "time.sleep(1000)")
        return [self._child(code).pid for _ in range(int(options["count"]))]

    def print_text(self, arguments: list[str], options: dict[str, Any]) -> bool:
        print(options["text"], end=options.get("end", "\n"), flush=True)
        print(options["text"], file=sys.stderr, flush=True)
        return True

    def flood(self, arguments: list[str], options: dict[str, Any]) -> int:
        line = "x" * 1023 + "\n"
        out = sys.stdout
        for _ in range(int(options["mb"]) * 1024):
            out.write(line)
        out.flush()
        return int(options["mb"]) << 20

    def endless_thread(self, arguments: list[str], options: dict[str, Any]) -> str:
        def forever() -> None:
            while True:
                time.sleep(0.05)

        threading.Thread(target=forever).start()  # not a daemon: Python would wait for it
        return "started"

    def memfd(self, arguments: list[str], options: dict[str, Any]) -> int:
        """Shared memory: charged to the worker's cgroup, not to its RLIMIT_DATA."""
        self.shared = os.memfd_create("hog")
        chunk = b"m" * (1 << 20)
        for _ in range(int(options["mb"])):
            os.write(self.shared, chunk)
        return int(options["mb"])

    def _child(self, code: str) -> "subprocess.Popen[bytes]":
        return subprocess.Popen([sys.executable, "-c", code])

    def handle_message(self, message: Any) -> None:
        return None
