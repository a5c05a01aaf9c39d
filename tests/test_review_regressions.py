"""Regressions for bugs a review found: each test failed before its fix."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command, Message, Request

from conftest import (
    PLUGINS,
    copy_plugin,
    data_folder,
    load_active,
    running_container,
    wait_until,
)
from spec_kit_runtime import EncodeError, LifecycleError, PluginStateError, RoutingError

pytestmark = pytest.mark.timeout(40)
NESTED = PLUGINS / "nested"


def forward(method: str, **params: Any) -> Command:
    return Command(command_name="relay:forward", options={"method": method, "params": params})


def test_a_reply_for_an_outer_wait_is_not_lost(tmp_path: Path) -> None:
    """Handler 1 waits on slow_b; meanwhile handler 2 (same worker) waits on slow_c."""
    for plugin_id in ("slow_b", "slow_c"):
        copy_plugin(NESTED / "slow", tmp_path, plugin_id)
    with running_container(request_timeout=8.0, data_dir=str(tmp_path / "data")) as container:
        load_active(container, NESTED, "relay")
        for plugin_id in ("slow_b", "slow_c"):
            load_active(container, tmp_path, plugin_id)
        marker = data_folder(tmp_path / "data", "slow_b") / "outer-in-flight"
        outcome: dict[str, Any] = {}

        def outer() -> None:
            started = time.monotonic()
            outcome["reply"] = container.send_message(
                "relay", forward("slow_b:wait", seconds=0.5, marker=str(marker)))
            outcome["took"] = time.monotonic() - started

        thread = threading.Thread(target=outer)
        thread.start()
        wait_until(marker.exists)
        inner = container.send_message("relay", forward("slow_c:wait", seconds=1.0))
        thread.join(15)
        assert inner == "slow_c done"
        assert outcome["reply"] == "slow_b done"  # was DeadlineExceeded after 8 s
        assert outcome["took"] < 5


def test_a_caller_handler_may_call_back_into_the_container() -> None:
    with running_container() as container:
        load_active(container, NESTED, "relay")

        def handler(message: Message) -> Any:  # runs while the main thread still waits
            return {"plugins": container.status()["supervisor"]["plugins"]}

        container.subscribe("relay", "request:relay:callback", handler)
        # Deadlocked until its deadline before: both threads needed one connection's lock.
        assert container.send_message("relay", forward("relay:callback")) == {"plugins": 1}


def test_an_oversized_caller_reply_is_an_error_not_a_broken_connection() -> None:
    with running_container(max_message_bytes=100_000) as container:
        load_active(container, NESTED, "relay")
        container.subscribe("relay", "request:relay:big", lambda m: "x" * 200_000)
        container.subscribe("relay", "request:relay:small", lambda m: "ok")
        with pytest.raises(EncodeError, match="exceeds the limit"):
            container.send_message("relay", forward("relay:big"))
        assert container.send_message("relay", forward("relay:small")) == "ok"


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e18, -1.0])
def test_absurd_timeouts_are_refused_and_the_supervisor_lives(timeout: float) -> None:
    with running_container() as container:
        load_active(container, NESTED, "relay")
        with pytest.raises(RoutingError, match="timeout must be"):
            container.send_message("relay", Request(method="relay:x", timeout=timeout))
        assert container.status()["supervisor"]["plugins"] == 1


def test_configured_request_timeout_applies_to_client_sends(tmp_path: Path) -> None:
    copy_plugin(NESTED / "slow", tmp_path, "slow_d")
    with running_container(request_timeout=0.5) as container:
        load_active(container, tmp_path, "slow_d")
        started = time.monotonic()
        with pytest.raises(Exception, match="did not answer"):
            container.send_message("slow_d", Request(method="slow_d:wait",
                                                     params={"seconds": 3}))
        assert time.monotonic() - started < 2.5  # was the client's own 30 s


def test_load_during_an_operation_is_refused_not_falsely_reported(tmp_path: Path) -> None:
    copy_plugin(NESTED / "slow", tmp_path, "slow_e")
    with running_container(data_dir=str(tmp_path / "data")) as container:
        load_active(container, tmp_path, "slow_e")
        info = container.discovered_plugins["slow_e"]
        container.load_plugin(info)  # loaded and idle: "already loaded", as in 1.0
        marker = data_folder(tmp_path / "data", "slow_e") / "busy"
        busy = threading.Thread(target=container.send_message, args=(
            "slow_e", Request(method="slow_e:wait", params={"seconds": 1.5,
                                                           "marker": str(marker)})))
        busy.start()
        wait_until(marker.exists)
        unloading = threading.Thread(target=container.unload_plugin, args=("slow_e",))
        unloading.start()  # its deactivate phase waits behind the handler in flight
        wait_until(lambda: container.status()["plugins"][0]["busy"] == "unload")
        with pytest.raises(PluginStateError, match="unload in progress"):
            container.load_plugin(info)  # answered "loaded" before, then the unload won
        busy.join(10)
        unloading.join(10)
        assert container.status()["plugins"] == []


WITNESS = PLUGINS / "bad" / "witness"


def test_a_batched_restart_gives_each_phase_its_own_timeout(tmp_path: Path) -> None:
    """load, initialize and activate take 0.6 s each, phase_timeout is 1 s: one at a time
    they passed; sent at once, activate used to time out before initialize had answered."""
    with running_container(phase_timeout=1.0, data_dir=str(tmp_path / "data")) as container:
        folder = data_folder(tmp_path / "data", "witness")
        load_active(container, WITNESS, "witness",
                    config={"log": str(folder / "phases.log"), "fail_flag": "", "slow": 0.6})
        (folder / "slow-load").write_text("0.6")
        container.restart_plugin("witness")  # load, initialize, activate in one batch
        assert container.status()["plugins"][0]["state"] == "active"


def test_activate_may_be_retried_after_it_failed(tmp_path: Path) -> None:
    """A failed activate (a database not up yet, say) may be tried again on the same worker."""
    with running_container(data_dir=str(tmp_path / "data")) as container:
        folder = data_folder(tmp_path / "data", "witness")
        flag = folder / "no-database"
        container.discover_plugins([WITNESS])
        container.load_plugin(container.discovered_plugins["witness"], config={
            "log": str(folder / "phases.log"), "fail_flag": "",
            "fail_activate_flag": str(flag)})
        flag.touch()
        with pytest.raises(LifecycleError, match="activate fails"):
            container.activate_plugin("witness")
        flag.unlink()
        container.activate_plugin("witness")
        assert container.status()["plugins"][0]["state"] == "active"
