"""Every misbehaviour at once, in one supervisor: each is contained with its reason, a
well-behaved plugin beside it answers after every one, and the supervisor's memory stays
flat. The rlimits and the watchdog alone (no cgroups), as on any machine."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from spec_kit_contracts import Command

from conftest import GOOD, PLUGINS, load_active, running_container, wait_until
from spec_kit_runtime import HandlerError, WorkerDiedError

pytestmark = pytest.mark.timeout(90)
LIMITS = {"memory_mb": 200, "open_files": 64, "cpu_percent": 50, "cpu_window": 1,
          "max_processes": 4, "output_kb_per_s": 16}  # cpu_seconds: test_limits (a total)


def test_each_misbehaviour_is_contained_and_the_neighbour_keeps_answering() -> None:
    config = {"limits": LIMITS, "watchdog_interval": 0.1, "cgroups": False,
              "restart": {"max_restarts": 20, "period": 60}}
    with running_container(**config) as container:
        load_active(container, PLUGINS / "crash" / "hog", "hog")
        load_active(container, GOOD, "design")
        supervisor = psutil.Process(container.status()["supervisor"]["pid"])

        def hog(action: str, **options: Any) -> Any:
            return container.send_message("hog", Command(command_name=f"hog:{action}",
                                                         options=options))

        def hog_entry() -> dict[str, Any]:
            return dict(container.status()["plugins"][0])

        def neighbour_answers() -> None:
            assert container.send_message("design", Command(
                command_name="design:generate", arguments=["ok"]))["doc"] == "# ok"

        def killed_with(reason: str, action: Callable[[], Any]) -> None:
            restarts = hog_entry()["restarts"]
            with contextlib.suppress(WorkerDiedError):  # the kill may land mid-request
                action()
            wait_until(lambda: hog_entry()["restarts"] == restarts + 1
                       and hog_entry()["state"] == "active", timeout=15,
                       what=f"hog restarted after: {reason}")
            assert reason in hog_entry()["last_exit"], hog_entry()["last_exit"]

        rss_before = supervisor.memory_info().rss
        with pytest.raises(HandlerError, match="MemoryError"):
            hog("memory", mb=400)
        neighbour_answers()
        with pytest.raises(HandlerError, match="Too many open files"):
            hog("files", count=100)
        neighbour_answers()
        killed_with("memory limit 200 MiB exceeded", lambda: hog("child_memory", mb=120, count=2))
        neighbour_answers()
        killed_with("process limit 4 exceeded", lambda: hog("swarm", count=6))
        neighbour_answers()
        killed_with("cpu limit 50% exceeded", lambda: hog("spin_thread"))
        neighbour_answers()
        assert hog("flood", mb=32) == 32 << 20
        neighbour_answers()
        assert hog("endless_thread") == "started"
        container.restart_plugin("hog")  # an orderly stop is not held up by the thread
        assert hog_entry()["last_exit"] == "exited with code 0"
        neighbour_answers()
        wait_until(lambda: hog_entry()["output"]["dropped_bytes"] > 16 << 20,
                   what="the flood counted")
        assert supervisor.memory_info().rss - rss_before < 32 << 20
