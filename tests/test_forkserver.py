"""The fork server: every worker is its child, and nothing a plugin starts outlives its worker
(children that left the process group or the session, orphans), nor the supervisor."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from spec_kit_contracts import Command

from conftest import (
    _SEEN_PIDS,
    GOOD,
    PLUGINS,
    all_gone,
    copy_plugin,
    kill_survivors,
    load_active,
    pid_alive,
    plugin_entry,
    running_container,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import ConfigError, ManifestError
from spec_kit_runtime.plugins.config import config_from_data
from spec_kit_runtime.plugins.manifest_fields import parse_manifest_data

pytestmark = pytest.mark.timeout(40)
ESCAPIST = PLUGINS / "crash" / "escapist"


def escape(container: PluginContainer, how: str) -> int:
    pid = container.send_message("escapist", Command(command_name=f"escapist:{how}"))
    assert isinstance(pid, int) and pid_alive(pid)
    _SEEN_PIDS.add(pid)
    return pid


def worker_pid(container: PluginContainer, plugin_id: str) -> int:
    pid = plugin_entry(container, plugin_id)["pid"]
    assert isinstance(pid, int)
    return pid


def test_one_fork_server_is_the_parent_of_every_worker() -> None:
    with running_container() as container:
        container.discover_plugins([GOOD])
        for plugin_id in ("design", "audit"):
            container.load_plugin(container.discovered_plugins[plugin_id], config={})
        supervisor = container.status()["supervisor"]
        forkserver = supervisor["forkserver_pid"]
        assert supervisor["start_method"] == "fork"
        assert psutil.Process(forkserver).ppid() == supervisor["pid"]
        for plugin_id in ("design", "audit"):
            worker = psutil.Process(worker_pid(container, plugin_id))
            assert worker.ppid() == forkserver
            assert os.getsid(worker.pid) == worker.pid  # a session (and group) of its own


def test_spawn_start_method_gives_a_fresh_interpreter(tmp_path: Path) -> None:
    copy_plugin(PLUGINS / "crash" / "crashy", tmp_path, "fresh", start_method="spawn")
    copy_plugin(PLUGINS / "crash" / "crashy", tmp_path, "forked")
    with running_container() as container:
        for plugin_id in ("fresh", "forked"):
            load_active(container, tmp_path, plugin_id)
            assert container.send_message(plugin_id, Command(
                command_name=f"{plugin_id}:ping"))["pong"] == worker_pid(container, plugin_id)
        fresh = psutil.Process(worker_pid(container, "fresh")).cmdline()
        forked = psutil.Process(worker_pid(container, "forked")).cmdline()
        assert fresh[1:3] == ["-m", "spec_kit_worker"] and "--bootstrap-fd" in fresh
        assert forked[1:3] == ["-m", "spec_kit_worker.birth.forkserver"]


def test_spawn_as_the_runtime_default() -> None:
    with running_container(start_method="spawn") as container:
        load_active(container, GOOD, "design")
        assert psutil.Process(worker_pid(container, "design")).cmdline()[2] == "spec_kit_worker"
        assert container.send_message("design", Command(
            command_name="design:generate", arguments=["t"]))["doc"] == "# t"


def test_bad_start_method_in_the_config() -> None:
    with pytest.raises(ConfigError, match=r"'runtime\.start_method' must be fork or spawn"):
        config_from_data({"runtime": {"start_method": "thread"}}, Path("c.yaml"))


def test_bad_start_method_in_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "x_plugin.py").write_text("class Plugin: pass\n")
    manifest = {"id": "x", "name": "x", "version": "1.0.0", "start_method": "forkserver"}
    with pytest.raises(ManifestError) as caught:
        parse_manifest_data(manifest, tmp_path / "plugin.json", tmp_path)
    assert caught.value.field == "start_method"


def test_a_child_that_left_the_group_goes_with_a_clean_stop() -> None:
    with running_container(restart={"type": "temporary"}) as container:
        load_active(container, ESCAPIST, "escapist")
        child = escape(container, "setsid")
        container.stop_plugin("escapist")
        all_gone({child}, timeout=3.0, what="the setsid child of a stopped worker")


@pytest.mark.parametrize("how", ["setsid", "orphan", "orphan_setsid"])
def test_escapees_go_with_a_killed_worker(how: str) -> None:
    with running_container(restart={"type": "temporary"}) as container:
        load_active(container, ESCAPIST, "escapist")
        escapee = escape(container, how)
        os.kill(worker_pid(container, "escapist"), signal.SIGKILL)
        wait_until(lambda: container.status()["plugins"][0]["state"] == "error",
                   what="the worker's death")
        all_gone({escapee}, timeout=3.0, what=f"the {how} escapee of a killed worker")


def test_everything_goes_with_a_sigkilled_supervisor() -> None:
    container = PluginContainer({"log_level": "WARNING"})
    status = container.status()
    supervisor, forkserver = status["supervisor"]["pid"], status["supervisor"]["forkserver_pid"]
    family: set[int] = {supervisor, forkserver}
    _SEEN_PIDS.update(family)
    try:
        load_active(container, ESCAPIST, "escapist")
        load_active(container, PLUGINS / "crash" / "stubborn", "stubborn")
        family |= set(container.send_message("stubborn", Command(command_name="stubborn:family")))
        family |= {escape(container, how) for how in ("setsid", "orphan", "orphan_setsid")}
        family.add(worker_pid(container, "escapist"))
        _SEEN_PIDS.update(family)
        os.kill(supervisor, signal.SIGKILL)
        all_gone(family, timeout=2.0, what="the processes of a SIGKILLed supervisor")
    finally:
        container.shutdown()
        kill_survivors(family)


def test_a_killed_fork_server_is_replaced_and_its_workers_restarted() -> None:
    with running_container() as container:
        load_active(container, ESCAPIST, "escapist")
        before = container.status()["supervisor"]["forkserver_pid"]
        old_worker = worker_pid(container, "escapist")
        os.kill(before, signal.SIGKILL)
        all_gone({before, old_worker}, timeout=3.0, what="the fork server and its worker")

        def answering() -> bool:
            try:
                return container.send_message(
                    "escapist", Command(command_name="escapist:ping")) != old_worker
            except Exception:
                return False

        wait_until(answering, timeout=10.0, what="a replacement worker")
        entry = container.status()["plugins"][0]
        assert entry["last_exit"] == "the fork server exited (killed by SIGKILL)"
        assert entry["restarts"] == 1
        after = container.status()["supervisor"]["forkserver_pid"]
        assert after not in (None, before)
        assert psutil.Process(worker_pid(container, "escapist")).ppid() == after


def test_a_restart_spawned_while_the_fork_server_dies_is_not_orphaned(tmp_path: Path) -> None:
    """The fork server dies while a restart is in its shutdown phase: ending the old worker
    lets the restart go on at once, asking the *new* fork server for a worker, which must
    not be failed with the old one's spawns (and then run, nobody's, until shutdown)."""
    copy_plugin(PLUGINS / "crash" / "stubborn", tmp_path, "stubborn")
    with running_container() as container:
        load_active(container, tmp_path, "stubborn", config={"hang_in_shutdown": True})
        outcome: list[BaseException | None] = []

        def restart() -> None:
            try:
                container.restart_plugin("stubborn")
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=restart)
        thread.start()
        wait_until(lambda: container.status()["plugins"][0]["busy"] == "restart")
        time.sleep(0.3)  # in its (hanging) shutdown phase
        old = container.status()["supervisor"]["forkserver_pid"]
        os.kill(old, signal.SIGKILL)
        thread.join(15)
        assert outcome, "the restart never finished"

        wait_until(lambda: container.status()["supervisor"]["forkserver_pid"] not in (None, old),
                   timeout=5, what="a new fork server")
        time.sleep(1.5)  # it forks what it was asked for (killed at once when nobody's)
        status = container.status()
        new = status["supervisor"]["forkserver_pid"]
        children = {p.pid for p in psutil.Process(new).children()}
        _SEEN_PIDS.update(children)
        known = {p["pid"] for p in status["plugins"] if p["pid"]}
        # idle: its stdio, its channel and ZeroMQ's context (an eventfd) only
        spares = {pid for pid in children - known if len(os.listdir(f"/proc/{pid}/fd")) <= 5}
        assert len(spares) <= 1 and children - spares <= known, (
            f"workers {sorted(children - known - spares)} of the new fork server are not any "
            f"plugin's (status: {status['plugins']})")
