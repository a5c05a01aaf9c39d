"""Chaos: request load on several plugins while random workers are SIGKILLed.

Every request gets a reply or a typed error before its deadline, each kill costs exactly
one restart, the supervisor survives, and nothing is left behind (the fixture checks).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, copy_plugin, load_active, running_container, wait_until
from spec_kit_runtime import PluginContainer, RuntimeFailure

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"
VICTIMS = ("chaos_a", "chaos_b", "chaos_c")
DEADLINE = 2.0


def active_pids(container: PluginContainer) -> dict[str, int]:
    return {p["id"]: p["pid"] for p in container.status()["plugins"]
            if p["state"] == "active" and p["pid"]}


def test_random_sigkills_under_load(tmp_path: Path) -> None:
    for plugin_id in VICTIMS:
        copy_plugin(CRASHY, tmp_path, plugin_id)
    rng = random.Random(1234)
    kills = dict.fromkeys(VICTIMS, 0)
    outcomes: list[tuple[str, float]] = []
    failures: list[str] = []
    stop = threading.Event()
    with running_container(restart={"backoff_initial": 0.01, "max_restarts": 1000}) as container:
        for plugin_id in VICTIMS:
            load_active(container, tmp_path, plugin_id)

        def load(seed: int) -> None:
            local = random.Random(seed)
            while not stop.is_set():
                plugin_id = local.choice(VICTIMS)
                started = time.monotonic()
                try:
                    container.send_message(plugin_id, Command(
                        command_name=f"{plugin_id}:ping", options={}), )
                    kind = "ok"
                except RuntimeFailure as exc:
                    kind = type(exc).__name__
                except Exception as exc:  # anything untyped is a failure of the runtime
                    failures.append(f"{type(exc).__name__}: {exc}")
                    kind = "untyped"
                outcomes.append((kind, time.monotonic() - started))

        senders = [threading.Thread(target=load, args=(seed,)) for seed in range(3)]
        for sender in senders:
            sender.start()
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            candidates = active_pids(container)
            if candidates:
                plugin_id = rng.choice(sorted(candidates))
                os.kill(candidates[plugin_id], signal.SIGKILL)
                kills[plugin_id] += 1
                wait_until(lambda p=plugin_id, pid=candidates[plugin_id]:
                           active_pids(container).get(p) != pid, timeout=5)
            time.sleep(rng.uniform(0.05, 0.2))  # pacing of the chaos, not synchronisation
        stop.set()
        for sender in senders:
            sender.join(10)

        wait_until(lambda: set(active_pids(container)) == set(VICTIMS), timeout=10)
        restarts = {p["id"]: p["restarts"] for p in container.status()["plugins"]}
        assert restarts == kills
        assert sum(kills.values()) >= 5
        assert not failures
        kinds = {kind for kind, _ in outcomes}
        assert "ok" in kinds and kinds <= {"ok", "WorkerDiedError", "PluginNotActiveError"}
        assert max(took for _, took in outcomes) < DEADLINE
