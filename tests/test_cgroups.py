"""A cgroup per worker (v1 memory and pids), when asked for and the machine allows it: status
says which mechanism is active, the kernel holds the whole tree to its limits, and nothing in
the group outlives the worker. Without cgroups the rlimits and the watchdog work alone."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from spec_kit_contracts import Command

from conftest import (
    _SEEN_PIDS,
    PLUGINS,
    all_gone,
    load_active,
    pid_alive,
    plugin_entry,
    running_container,
    wait_until,
)
from spec_kit_runtime import HandlerError, PluginContainer, WorkerDiedError
from spec_kit_runtime.linux.cgroups import TASKS_PER_PROCESS, Cgroups

pytestmark = pytest.mark.timeout(40)
HOG = PLUGINS / "crash"
ESCAPIST = PLUGINS / "crash" / "escapist"


def _usable() -> str:
    probe = Cgroups(True)
    reason = probe.reason
    probe.close()
    return reason


WHY_NOT = _usable()
needs_cgroups = pytest.mark.skipif(bool(WHY_NOT), reason=f"cgroups unusable here: {WHY_NOT}")



def test_cgroups_are_off_unless_asked_for() -> None:
    with running_container() as container:
        load_active(container, HOG / "hog", "hog")
        assert container.status()["supervisor"]["cgroups"] == {
            "active": False, "reason": "off in the config (runtime.cgroups)"}
        assert plugin_entry(container, "hog")["cgroups"] == []


@needs_cgroups
def test_each_worker_runs_in_groups_of_its_own() -> None:
    limits = {"max_processes": 7, "memory_mb": 300}
    with running_container(cgroups=True, limits=limits) as container:
        load_active(container, HOG / "hog", "hog")
        described = container.status()["supervisor"]["cgroups"]
        assert described["active"] and described["controllers"] == ["memory", "pids"]
        hog = plugin_entry(container, "hog")
        memory, pids = (Path(group) for group in hog["cgroups"])
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(300 << 20)
        assert (pids / "pids.max").read_text().strip() == str(7 * TASKS_PER_PROCESS)
        assert str(hog["pid"]) in (pids / "cgroup.procs").read_text().split()
        own = Path(f"/proc/{hog['pid']}/cgroup").read_text()
        assert f"{memory.parent.name}/{memory.name}" in own
    assert not memory.exists() and not pids.exists() and not memory.parent.exists()


@needs_cgroups
def test_a_fork_bomb_is_stopped_by_the_kernel_before_the_watchdog_looks() -> None:
    config = {"limits": {"max_processes": 1}, "watchdog_interval": 3600.0, "cgroups": True}
    with running_container(**config) as container:
        load_active(container, HOG / "hog", "hog")
        pid = plugin_entry(container, "hog")["pid"]
        with pytest.raises(HandlerError, match="Resource temporarily unavailable"):
            container.send_message("hog", Command(command_name="hog:swarm",
                                                  options={"count": TASKS_PER_PROCESS}))
        assert container.send_message("hog", Command(command_name="hog:ping")) == pid


@needs_cgroups
def test_memory_only_a_cgroup_sees_is_held_by_the_kernel() -> None:
    config = {"limits": {"memory_mb": 128}, "watchdog_interval": 3600.0,
              "restart": {"type": "temporary"}, "cgroups": True}
    with running_container(**config) as container:
        load_active(container, HOG / "hog", "hog")
        with pytest.raises(WorkerDiedError, match="memory limit 128 MiB exceeded"):
            container.send_message("hog", Command(command_name="hog:memfd",
                                                  options={"mb": 400}))
        assert plugin_entry(container, "hog")["last_exit"] == (
            "memory limit 128 MiB exceeded (the kernel's OOM killer, in the worker's cgroup) "
            "(killed by SIGKILL)")


@needs_cgroups
def test_a_hidden_escapee_goes_with_its_worker() -> None:
    """Out of the session, orphaned and with an empty environment: only its cgroup knows."""
    with running_container(cgroups=True, restart={"type": "temporary"}) as container:
        load_active(container, ESCAPIST, "escapist")
        escapee = container.send_message("escapist",
                                         Command(command_name="escapist:orphan_hidden"))
        assert pid_alive(escapee)
        os.kill(plugin_entry(container, "escapist")["pid"], signal.SIGKILL)
        wait_until(lambda: plugin_entry(container, "escapist")["state"] == "error")
        all_gone({escapee}, timeout=3.0, what="the hidden escapee")


def test_without_cgroups_a_hidden_escapee_goes_with_the_supervisor() -> None:
    with running_container(cgroups=False) as container:
        load_active(container, ESCAPIST, "escapist")
        escapee = container.send_message("escapist",
                                         Command(command_name="escapist:orphan_hidden"))
        assert pid_alive(escapee)
    all_gone({escapee}, timeout=3.0, what="the hidden escapee after shutdown")


@needs_cgroups
def test_groups_go_with_a_sigkilled_supervisor() -> None:
    container = PluginContainer({"log_level": "WARNING", "cgroups": True})
    try:
        load_active(container, HOG / "hog", "hog")
        status = container.status()
        groups = [Path(group) for group in plugin_entry(container, "hog")["cgroups"]]
        _SEEN_PIDS.update({status["supervisor"]["pid"], status["supervisor"]["forkserver_pid"],
                           plugin_entry(container, "hog")["pid"]})
        os.kill(status["supervisor"]["pid"], signal.SIGKILL)
        wait_until(lambda: not any(g.exists() or g.parent.exists() for g in groups),
                   timeout=3.0, what="the fork server to remove the groups")
    finally:
        container.shutdown()


@needs_cgroups
def test_a_sigtermed_fork_server_is_replaced_and_workers_still_get_groups() -> None:
    with running_container(cgroups=True) as container:
        load_active(container, HOG / "hog", "hog")
        status = container.status()
        old_worker = plugin_entry(container, "hog")["pid"]
        os.kill(status["supervisor"]["forkserver_pid"], signal.SIGTERM)
        wait_until(lambda: plugin_entry(container, "hog")["pid"] not in (None, old_worker)
                   and plugin_entry(container, "hog")["state"] == "active", timeout=10,
                   what="a replacement worker")
        groups = [Path(group) for group in plugin_entry(container, "hog")["cgroups"]]
        assert groups and all(group.is_dir() for group in groups)
        assert container.send_message("hog", Command(command_name="hog:ping")) == \
            plugin_entry(container, "hog")["pid"]


@needs_cgroups
def test_escapees_go_with_a_sigkilled_fork_server() -> None:
    with running_container(cgroups=True) as container:
        load_active(container, ESCAPIST, "escapist")
        escapee = container.send_message("escapist",
                                         Command(command_name="escapist:orphan_hidden"))
        os.kill(container.status()["supervisor"]["forkserver_pid"], signal.SIGKILL)
        all_gone({escapee}, timeout=3.0, what="the escapee of a SIGKILLed fork server")


@pytest.mark.parametrize(("layout", "reason"), [
    ({"cgroup.controllers": "memory pids"}, "cgroup v2 only here, which is not supported yet"),
    ({}, "no cgroup v1 'memory' controller here"),
])
def test_the_reason_cgroups_are_not_used(tmp_path: Path, layout: dict[str, str],
                                         reason: str) -> None:
    for name, text in layout.items():
        (tmp_path / name).write_text(text)
    probe = Cgroups(True, root=tmp_path)
    assert not probe.available and probe.reason == reason
