"""Benchmark: SIGKILL of a worker → the supervisor notices → a replacement answers.

Prints median and p95 of both intervals over N kills of one plugin. Detection is read
from the supervisor's own record (``last_exit_at``, CLOCK_MONOTONIC, shared by all
processes on Linux); "answering" is the first answer of the new worker, asked as soon as
its activation event comes (waited for: polling would take CPU from the restart and add an
interval of its own).
Run: ``python bench/restart.py [--kills N] [--off LAYER ...]``, ``--off`` turning a layer
of the worker's confinement off (``landlock``, ``network_namespace``) to see what it costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from idle import LAYERS
from spec_kit_contracts import Command

from spec_kit_runtime import PluginContainer

PLUGIN = Path(__file__).resolve().parent.parent / "tests" / "plugins" / "crash" / "crashy"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def entry(container: PluginContainer) -> dict[str, object]:
    return dict(container.status()["plugins"][0])


def measure(kills: int, off: tuple[str, ...] = ()) -> tuple[list[float], list[float]]:
    folder = Path(tempfile.mkdtemp()) / "crashy"
    shutil.copytree(PLUGIN, folder)
    container = PluginContainer({"log_level": "WARNING", "data_dir": str(folder.parent / "data"),
                                 "restart": {"max_restarts": kills + 10, "period": 3600,
                                             "stable_after": 0.01},  # no backoff
                                 "hardening": dict.fromkeys(off, False)})
    detected, answering = [], []
    try:
        container.discover_plugins([folder.parent])
        container.load_plugin(container.discovered_plugins["crashy"])
        container.activate_plugin("crashy")
        ping = Command(command_name="crashy:ping")
        with container.follow_events("event:system:plugin_active") as activations:
            for _ in range(kills):
                old = entry(container)["pid"]
                assert isinstance(old, int)
                time.sleep(0.05)  # let the previous replacement settle (not measured)
                killed_at = time.monotonic()
                os.kill(old, signal.SIGKILL)
                # Wait for the replacement's activation without polling (which would take
                # CPU from the restart and add its own interval), then call it once.
                while next(activations).event_data["pid"] == old:
                    pass
                while container.send_message("crashy", ping)["pong"] == old:
                    pass
                answering.append(time.monotonic() - killed_at)
                exit_at = entry(container)["last_exit_at"]
                assert isinstance(exit_at, float)
                detected.append(exit_at - killed_at)
    finally:
        container.shutdown()
        shutil.rmtree(folder.parent, ignore_errors=True)
    return detected, answering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--off", action="append", default=[], choices=LAYERS)
    args = parser.parse_args()
    detected, answering = measure(args.kills, tuple(args.off))
    layers = f", off: {', '.join(args.off)}" if args.off else ""
    print(f"SIGKILL -> restart, {args.kills} kills, {os.cpu_count()} CPUs{layers}")
    print(f"{'interval':<34}{'median ms':>10}{'p95 ms':>10}")
    for name, values in (("SIGKILL -> death noticed", detected),
                         ("SIGKILL -> replacement answering", answering)):
        print(f"{name:<34}{statistics.median(values) * 1000:>10.1f}"
              f"{percentile(values, 0.95) * 1000:>10.1f}")


if __name__ == "__main__":
    main()
