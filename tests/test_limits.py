"""Resource limits applied by the kernel in each worker (rlimits), with real hogs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, all_gone, load_active, running_container, wait_until
from spec_kit_runtime import HandlerError, PluginNotActiveError, WorkerDiedError
from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.plugins.config import config_from_data
from spec_kit_runtime.policy.limits import Limits, limits_from_data

pytestmark = pytest.mark.timeout(40)
HOG = PLUGINS / "crash"


def hog(container: Any, action: str, **options: Any) -> Any:
    return container.send_message("hog", Command(command_name=f"hog:{action}", options=options))


@pytest.mark.parametrize(("data", "why"), [
    ({"memory_mb": 10}, "memory_mb must be null"),
    ({"open_files": "many"}, "open_files must be null"),
    ({"cpu_seconds": True}, "cpu_seconds must be null"),
    ({"disk_mb": 5}, "unknown key 'disk_mb'"),
    ({"cpu_window": None}, "cpu_window must be a finite number >= 1"),
    ({"cpu_window": float("nan")}, "cpu_window must be a finite number >= 1"),
    ({"max_processes": 0}, "max_processes must be null"),
])
def test_bad_limits_are_refused(data: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        limits_from_data(data, Limits())
    with pytest.raises(ConfigError, match=why):
        config_from_data({"runtime": {"limits": data}}, Path("c.yaml"))


def test_per_plugin_limits_override_the_defaults() -> None:
    config = config_from_data({"runtime": {"limits": {"memory_mb": 256}},
                               "plugins": {"hog": {"limits": {"open_files": 64}}}}, Path("c"))
    assert config.limits_for("hog") == Limits(memory_mb=256, open_files=64)
    assert config.limits_for("other") == Limits(memory_mb=256)


def test_memory_and_files_fail_inside_the_plugin_which_keeps_serving() -> None:
    with running_container(limits={"memory_mb": 128, "open_files": 64}) as container:
        load_active(container, HOG, "hog")
        pid = hog(container, "ping")
        with pytest.raises(HandlerError, match="MemoryError"):
            hog(container, "memory", mb=512)
        with pytest.raises(HandlerError, match="Too many open files"):
            hog(container, "files", count=200)
        assert hog(container, "memory", mb=16) == 16 * 1024 * 1024
        assert hog(container, "ping") == pid  # the same worker, contained
        limits = container.status()["plugins"][0]["limits"]
        assert (limits["memory_mb"], limits["open_files"], limits["cpu_seconds"]) == (128, 64, None)


def test_cpu_seconds_kills_the_worker_with_the_reason_and_it_restarts() -> None:
    with running_container(limits={"cpu_seconds": 1}) as container:
        load_active(container, HOG, "hog")
        with pytest.raises(WorkerDiedError, match="cpu_seconds limit exceeded"):
            hog(container, "burn")
        wait_until(lambda: container.status()["plugins"][0]["restarts"] == 1, timeout=10)
        entry = container.status()["plugins"][0]
        assert entry["last_exit"] == "cpu_seconds limit exceeded (killed by SIGXCPU)"
        assert entry["state"] == "active"


WATCH = {"watchdog_interval": 0.1, "cgroups": False}  # the watchdog alone: no kernel help


@pytest.mark.parametrize(("limits", "action", "options", "reason"), [
    ({"cpu_percent": 50, "cpu_window": 1}, "spin_thread", {}, "cpu limit 50% exceeded"),
    ({"max_processes": 4}, "swarm", {"count": 6}, "process limit 4 exceeded"),
    ({"memory_mb": 200}, "child_memory", {"mb": 120, "count": 2},
     "memory limit 200 MiB exceeded"),
])
def test_watchdog_kills_the_tree_with_the_reason(limits: dict[str, Any], action: str,
                                                 options: dict[str, Any], reason: str) -> None:
    with running_container(limits=limits, restart={"type": "temporary"}, **WATCH) as container:
        load_active(container, HOG, "hog")
        started = hog(container, action, **options)
        children = set(started) if isinstance(started, list) else set()
        wait_until(lambda: container.status()["plugins"][0]["state"] == "error", timeout=15)
        entry = container.status()["plugins"][0]
        assert entry["last_exit"].startswith(reason), entry["last_exit"]
        assert entry["last_exit"].endswith("(killed by SIGKILL)")
        all_gone(children, timeout=3.0, what="the worker's children")


def test_status_shows_usage_against_limits() -> None:
    with running_container(**WATCH) as container:
        load_active(container, HOG, "hog")
        wait_until(lambda: container.status()["plugins"][0]["usage"] is not None)
        usage = container.status()["plugins"][0]["usage"]
        assert 5 < usage["rss_mb"] < 1024 and usage["processes"] == 1
        assert usage["cpu_percent"] >= 0


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_thread_that_never_ends_does_not_hold_up_a_stop(start_method: str) -> None:
    with running_container(stop_timeout=3.0, start_method=start_method) as container:
        load_active(container, HOG, "hog")
        assert hog(container, "endless_thread") == "started"
        started = time.monotonic()
        container.stop_plugin("hog")
        assert time.monotonic() - started < 3.0  # no SIGTERM was needed
        entry = container.status()["plugins"][0]
        assert (entry["state"], entry["last_exit"]) == ("stopped", "exited with code 0")


def test_orphans_count_against_max_processes() -> None:
    """Double-forked processes leave the worker's tree for the fork server's: still its own."""
    limits = {"max_processes": 3}
    with running_container(limits=limits, restart={"type": "temporary"}, **WATCH) as container:
        load_active(container, PLUGINS / "crash" / "escapist", "escapist")
        orphans: set[int] = set()
        # The kill lands while one of these is being made (WorkerDiedError), or between two
        # (the next finds the plugin failed: PluginNotActiveError); either says why.
        with pytest.raises((WorkerDiedError, PluginNotActiveError),
                           match="process limit 3 exceeded"):
            for _ in range(10):
                orphans.add(container.send_message("escapist", Command(
                    command_name="escapist:orphan")))
        assert len(orphans) >= 1  # the worker's tree alone never exceeded 3
        wait_until(lambda: container.status()["plugins"][0]["state"] == "error", timeout=15)
        all_gone(orphans, timeout=3.0, what="the orphans of the killed worker")
