"""Benchmark: what 50 idle workers cost: the supervisor's CPU with its resource watchdog on
and off, the fork server's, and memory per worker (USS, and PSS: a fair share of the pages
forked workers share with the fork server).

Each figure is measured over ``--seconds`` of idleness after every plugin is active; CPU is
the process's user + system time over that window (psutil), as a percentage of one core.
Run: ``python bench/idle.py [--plugins 50] [--seconds 10] [--off LAYER ...]`` (``--off`` as in
``restart.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from spec_kit_runtime import PluginContainer
from spec_kit_runtime.wire.status import Status, from_data

LAYERS = ("landlock", "network_namespace")  # of the workers' confinement (runtime.hardening)
PLUGIN = Path(__file__).resolve().parent.parent / "tests" / "plugins" / "crash" / "crashy"


def plugin_folders(count: int) -> Path:
    """``count`` copies of a small plugin, with ids idle0 … idleN."""
    root = Path(tempfile.mkdtemp())
    for index in range(count):
        folder = root / f"idle{index}"
        shutil.copytree(PLUGIN, folder)
        manifest = json.loads((folder / "plugin.json").read_text())
        manifest["id"] = folder.name
        (folder / "plugin.json").write_text(json.dumps(manifest))
    return root


def cpu_percent(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return 100.0 * used / seconds


def measure(count: int, seconds: float, watchdog_interval: float,
            off: tuple[str, ...] = ()) -> dict[str, float]:
    root = plugin_folders(count)
    container = PluginContainer({"log_level": "WARNING", "data_dir": str(root / "data"),
                                 "watchdog_interval": watchdog_interval,
                                 "hardening": dict.fromkeys(off, False)})
    try:
        container.discover_plugins([root])
        started = time.monotonic()
        for index in range(count):
            container.load_plugin(container.discovered_plugins[f"idle{index}"])
            container.activate_plugin(f"idle{index}")
        loaded = time.monotonic() - started
        status = from_data(Status, container.status())
        supervisor = psutil.Process(status.supervisor.pid)
        forkserver = psutil.Process(status.supervisor.forkserver_pid)
        workers = [psutil.Process(p.pid) for p in status.plugins]
        time.sleep(1.0)  # let start-up work settle
        supervisor_cpu = cpu_percent(supervisor, seconds)
        forkserver_cpu = cpu_percent(forkserver, 1.0)
        memory = [w.memory_full_info() for w in workers]
        return {
            "load": loaded,
            "supervisor_cpu": supervisor_cpu,
            "forkserver_cpu": forkserver_cpu,
            "uss_mib": statistics.median(m.uss for m in memory) / 2**20,
            "pss_mib": statistics.median(m.pss for m in memory) / 2**20,
            "rss_mib": statistics.median(m.rss for m in memory) / 2**20,
        }
    finally:
        container.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plugins", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--off", action="append", default=[], choices=LAYERS)
    args = parser.parse_args()
    off = tuple(args.off)
    watched = measure(args.plugins, args.seconds, watchdog_interval=1.0, off=off)
    unwatched = measure(args.plugins, args.seconds, watchdog_interval=3600.0, off=off)
    layers = f", off: {', '.join(off)}" if off else ""
    print(f"{args.plugins} idle workers, {args.seconds:g} s, {os.cpu_count()} CPUs{layers}")
    print(f"{'figure':<52}{'value':>10}")
    rows = [
        ("supervisor CPU, watchdog every 1 s (% of a core)", watched["supervisor_cpu"]),
        ("supervisor CPU, watchdog off (% of a core)", unwatched["supervisor_cpu"]),
        ("fork server CPU (% of a core)", watched["forkserver_cpu"]),
        ("load + activate all, one after another (s)", watched["load"]),
        ("memory per idle worker, USS median (MiB)", watched["uss_mib"]),
        ("memory per idle worker, PSS median (MiB)", watched["pss_mib"]),
        ("memory per idle worker, RSS median (MiB)", watched["rss_mib"]),
    ]
    for name, value in rows:
        print(f"{name:<52}{value:>10.2f}")


if __name__ == "__main__":
    main()
