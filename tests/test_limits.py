"""Resource limits applied by the kernel in each worker (rlimits), with real hogs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, load_active, running_container, wait_until
from spec_kit_runtime import HandlerError, WorkerDiedError
from spec_kit_runtime.config import config_from_data
from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.limits import Limits, limits_from_data

pytestmark = pytest.mark.timeout(40)
HOG = PLUGINS / "crash"


def hog(container: Any, action: str, **options: Any) -> Any:
    return container.send_message("hog", Command(command_name=f"hog:{action}", options=options))


@pytest.mark.parametrize(("data", "why"), [
    ({"memory_mb": 10}, "memory_mb must be null"),
    ({"open_files": "many"}, "open_files must be null"),
    ({"cpu_seconds": True}, "cpu_seconds must be null"),
    ({"disk_mb": 5}, "unknown key 'disk_mb'"),
])
def test_bad_limits_are_refused(data: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        limits_from_data(data, Limits())
    with pytest.raises(ConfigError, match=why):
        config_from_data({"runtime": {"limits": data}}, Path("c.yaml"))


def test_per_plugin_limits_override_the_defaults() -> None:
    config = config_from_data({"runtime": {"limits": {"memory_mb": 256}},
                               "plugins": {"hog": {"limits": {"open_files": 64}}}}, Path("c"))
    assert config.limits_for("hog") == Limits(memory_mb=256, cpu_seconds=None, open_files=64)
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
        assert limits == {"memory_mb": 128, "cpu_seconds": None, "open_files": 64}


def test_cpu_seconds_kills_the_worker_with_the_reason_and_it_restarts() -> None:
    with running_container(limits={"cpu_seconds": 1}) as container:
        load_active(container, HOG, "hog")
        with pytest.raises(WorkerDiedError, match="cpu_seconds limit exceeded"):
            hog(container, "burn")
        wait_until(lambda: container.status()["plugins"][0]["restarts"] == 1, timeout=10)
        entry = container.status()["plugins"][0]
        assert entry["last_exit"] == "cpu_seconds limit exceeded (killed by SIGXCPU)"
        assert entry["state"] == "active"
