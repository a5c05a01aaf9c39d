"""Benchmark: SIGKILL of a worker → the supervisor notices → a replacement answers.

Prints median and p95 of both intervals over N kills of one plugin. Detection is read
from the supervisor's own record (``last_exit_at``, CLOCK_MONOTONIC, shared by all
processes on Linux); "answering" is when the replacement's answer reaches a caller that
called as soon as it had killed the worker: its call waits for the plugin to be ready
(README, "Calls wait for ready"). A call that went to the worker before its death was seen
fails with the death, as it must (it is never re-sent); the caller then calls again, and
the count of such calls is printed.

``--timeline`` also prints where the time goes: each process marks its steps
(``spec_kit_runtime.logs.timeline``), and each step's median and p95 after the SIGKILL
are taken over the kills.
Run: ``python bench/restart.py [--kills N] [--off LAYER ...] [--timeline]``, ``--off``
turning a layer of the worker's confinement off (``landlock``, ``network_namespace``) to
see what it costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from idle import LAYERS
from spec_kit_contracts import Command

from spec_kit_runtime import PluginContainer, WorkerDiedError
from spec_kit_runtime.logs import timeline

PLUGIN = Path(__file__).resolve().parent.parent / "tests" / "plugins" / "crash" / "crashy"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def entry(container: PluginContainer) -> dict[str, object]:
    return dict(container.status()["plugins"][0])


@dataclass(frozen=True)
class Traced:
    """One restart's path, for the timeline: from the kill to the answer (CLOCK_MONOTONIC
    ns), through the supervisor, the fork server and the replacement (their pids)."""

    killed_ns: int
    answered_ns: int
    pids: frozenset[int]


@dataclass
class Restarts:
    """What ``measure`` saw: seconds from each SIGKILL to the death noticed and to the
    replacement's answer, the calls that failed with the death, and each restart's path
    (for the timeline)."""

    detected: list[float] = field(default_factory=list)
    answering: list[float] = field(default_factory=list)
    died_with_it: int = 0
    paths: list[Traced] = field(default_factory=list)


def measure(kills: int, off: tuple[str, ...] = ()) -> Restarts:
    folder = Path(tempfile.mkdtemp()) / "crashy"
    shutil.copytree(PLUGIN, folder)
    container = PluginContainer({"log_level": "WARNING", "data_dir": str(folder.parent / "data"),
                                 "restart": {"max_restarts": kills + 10, "period": 3600,
                                             "stable_after": 0.01},  # no backoff
                                 "hardening": dict.fromkeys(off, False)})
    seen = Restarts()
    ping = Command(command_name="crashy:ping")
    try:
        container.discover_plugins([folder.parent])
        container.load_plugin(container.discovered_plugins["crashy"])
        container.activate_plugin("crashy")
        about = container.status()["supervisor"]
        servers = {about["pid"], about["forkserver_pid"]}
        for _ in range(kills):
            old = entry(container)["pid"]
            assert isinstance(old, int)
            # Let the previous replacement settle, and the spare after it be prepared and
            # rehearsed (about 35-50 ms after a restart): not measured.
            time.sleep(0.1)
            killed_ns = time.monotonic_ns()
            killed_at = time.monotonic()
            os.kill(old, signal.SIGKILL)
            while True:
                try:
                    if container.send_message("crashy", ping)["pong"] != old:
                        break
                except WorkerDiedError:  # sent before the death was seen: not re-sent
                    seen.died_with_it += 1
            seen.answering.append(time.monotonic() - killed_at)
            answered_ns = time.monotonic_ns()
            new = entry(container)["pid"]
            seen.paths.append(Traced(killed_ns, answered_ns, frozenset({*servers, new})))
            exit_at = entry(container)["last_exit_at"]
            assert isinstance(exit_at, float)
            seen.detected.append(exit_at - killed_at)
    finally:
        container.shutdown()
        shutil.rmtree(folder.parent, ignore_errors=True)
    return seen


def steps_after_kills(folder: Path, paths: list[Traced]) -> dict[str, list[float]]:
    """Each step's time after its SIGKILL (seconds), from the processes' marks in
    ``folder``: the first mark of the step between the kill and the answer, by a process on
    that restart's path (not the next spare, which marks its own preparation meanwhile)."""
    marks = sorted((int(at), int(path.stem), step) for path in folder.glob("*.marks")
                   for at, step in (line.split(" ", 1) for line in path.read_text().split("\n")
                                    if line))
    found: dict[str, list[float]] = defaultdict(list)
    for restart in paths:
        seen: set[str] = set()
        for at, pid, step in marks:
            if (restart.killed_ns <= at <= restart.answered_ns and pid in restart.pids
                    and step not in seen):
                seen.add(step)
                found[step].append((at - restart.killed_ns) / 1e9)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--off", action="append", default=[], choices=LAYERS)
    parser.add_argument("--timeline", action="store_true", help="print each step's time too")
    args = parser.parse_args()
    marks = Path(tempfile.mkdtemp()) if args.timeline else None
    if marks is not None:  # read by each process of the supervisor at its start
        os.environ[timeline.VARIABLE] = str(marks)
    seen = measure(args.kills, tuple(args.off))
    layers = f", off: {', '.join(args.off)}" if args.off else ""
    print(f"SIGKILL -> restart, {args.kills} kills, {os.cpu_count()} CPUs{layers}")
    print(f"{'interval':<34}{'median ms':>10}{'p95 ms':>10}")
    for name, values in (("SIGKILL -> death noticed", seen.detected),
                         ("SIGKILL -> replacement answering", seen.answering)):
        print(f"{name:<34}{statistics.median(values) * 1000:>10.1f}"
              f"{percentile(values, 0.95) * 1000:>10.1f}")
    print(f"calls that failed with the death (sent before it was seen): {seen.died_with_it}")
    if marks is not None:
        print_steps(steps_after_kills(marks, seen.paths))
        shutil.rmtree(marks)


def print_steps(steps: dict[str, list[float]]) -> None:
    """The timeline's table: each step's median and p95 after the SIGKILL, in order."""
    print(f"\n{'step (ms after the SIGKILL)':<34}{'median':>10}{'p95':>10}{'kills':>7}")
    for step, values in sorted(steps.items(), key=lambda item: statistics.median(item[1])):
        print(f"{step:<34}{statistics.median(values) * 1000:>10.2f}"
              f"{percentile(values, 0.95) * 1000:>10.2f}{len(values):>7}")


if __name__ == "__main__":
    main()
