"""The 1.0 PluginContainer API against real supervisor and worker processes.

Covers the README example as written, each plugin in its own process, validators,
generators, hooks (priority order), events (fan-out), the handle_message fallback, and
lifecycle errors naming plugin, phase, exception type and message.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from spec_kit_contracts import Command, Event, PluginStatus, Request

from conftest import (
    DATA_HOME,
    GOOD,
    PLUGINS,
    copy_plugin,
    data_folder,
    load_active,
    pid_alive,
    plugin_pids,
    running_container,
    track,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import LifecycleError, PluginContractError

pytestmark = pytest.mark.timeout(30)


# -- the 1.0 README example ----------------------------------------------------------------

def test_readme_example_as_written() -> None:
    """The README's PluginContainer block, with real plugins in separate processes."""
    container = PluginContainer()
    try:
        plugins = container.discover_plugins([GOOD, Path("~/.specify/plugins").expanduser()])
        assert {p.id for p in plugins} >= {"design", "audit"}

        plugin_info = container.discovered_plugins["design"]
        container.load_plugin(plugin_info, config={"enabled": True})
        container.activate_plugin("design")
        container.load_plugin(container.discovered_plugins["audit"], config={})
        container.activate_plugin("audit")

        command_message = Command(command_name="design:generate", arguments=["Hello", "world"],
                                  options={"format": "md"})
        result = container.send_message("design", command_message)
        assert result == {"doc": "# Hello world", "options": {"format": "md"}}

        status = container.status()
        pids = plugin_pids(container)
        supervisor_pid = status["supervisor"]["pid"]
        assert set(pids) == {"design", "audit"}
        assert len({pids["design"], pids["audit"], supervisor_pid, os.getpid()}) == 4
        assert all(pid_alive(pid) for pid in (*pids.values(), supervisor_pid))
        assert {p["id"]: p["state"] for p in status["plugins"]} == {
            "design": "active", "audit": "active",
        }
        assert container.get_plugin_status("design") is PluginStatus.ACTIVE
        started = track(container)
    finally:
        container.shutdown()
    wait_until(lambda: not any(pid_alive(p) for p in started), what="workers after shutdown")
    container.shutdown()  # safe to call twice


# -- delivery ------------------------------------------------------------------------------

def test_validator_reachable_by_request(good_container: PluginContainer) -> None:
    ok = good_container.send_message(
        "design", Request(method="validator:python", params={"code": "print(1)"}))
    bad = good_container.send_message(
        "design", Request(method="validator:python", params={"code": "print((1)"}))
    assert ok == {"validator": "python", "valid": True, "source": "design"}
    assert bad["valid"] is False


def test_generator_reachable_by_request(good_container: PluginContainer) -> None:
    result = good_container.send_message(
        "audit", Request(method="generator:design", params={"title": "API"}))
    assert result == {"generated": "design", "title": "API"}


def test_hooks_run_in_priority_order_and_return_all_results(
        good_container: PluginContainer) -> None:
    # design registered its hook first (priority 90), audit later (priority 10): order is
    # by priority, not by registration.
    results = good_container.send_message("design", Request(method="hook:audit", params={"n": 7}))
    assert results == [{"plugin": "audit", "seen": 7}, {"plugin": "design", "seen": 7}]


def test_events_fan_out_to_every_subscriber(good_container: PluginContainer) -> None:
    event = Event(event_name="design:published", event_data={"doc": "spec.md"})
    reached = good_container.send_message("design", event)
    assert reached == 2

    def delivered(plugin: str, method: str) -> bool:
        seen = good_container.send_message(plugin, Request(method=method))
        return any(e["event"] == "design:published" and e["data"] == {"doc": "spec.md"}
                   for e in seen)

    wait_until(lambda: delivered("design", "design:events"), what="design to record the event")
    wait_until(lambda: delivered("audit", "audit:seen"), what="audit to record the event")
    seen = good_container.send_message("audit", Request(method="audit:seen"))
    assert {"event": "design:published", "data": {"doc": "spec.md"}, "source": "design"} in seen


def test_plugin_emits_events_from_its_worker(good_container: PluginContainer) -> None:
    reached = good_container.send_message(
        "design", Command(command_name="design:emit", arguments=["design:from_worker"]))
    assert reached == 2

    def audit_saw() -> list[dict[str, object]]:
        seen = good_container.send_message("audit", Request(method="audit:seen"))
        return [e for e in seen if e["event"] == "design:from_worker"]

    (entry,) = wait_until(audit_saw, what="audit to record the worker's event")
    assert entry == {"event": "design:from_worker", "data": {"from": "design-worker"},
                     "source": "design"}


def test_handle_message_fallback(good_container: PluginContainer) -> None:
    result = good_container.send_message(
        "design", Command(command_name="design:something", arguments=["a"]))
    assert result["fallback"] == "design"
    assert result["type"] == "command"
    assert result["payload"]["command_name"] == "design:something"
    assert result["payload"]["arguments"] == ["a"]
    # A registered handler still wins over the fallback.
    assert good_container.send_message(
        "design", Command(command_name="design:generate", arguments=["x"]))["doc"] == "# x"


# -- lifecycle errors ----------------------------------------------------------------------

def _load_faulty(container: PluginContainer, tmp_path: Path, plugin_id: str,
                 fail_in: str) -> None:
    folder = copy_plugin(PLUGINS / "bad" / "faulty", tmp_path, plugin_id)
    container.discover_plugins([folder])
    container.load_plugin(container.discovered_plugins[plugin_id], config={"fail_in": fail_in})


def test_initialize_error_names_plugin_phase_and_exception(
        good_container: PluginContainer, tmp_path: Path) -> None:
    with pytest.raises(LifecycleError) as caught:
        _load_faulty(good_container, tmp_path, "faulty_init", "initialize")
    error = caught.value
    assert isinstance(error, PluginContractError)  # 1.0 callers catch this
    assert error.plugin == "faulty_init"
    assert error.context["phase"] == "initialize"
    assert error.context["exception"] == "ValueError"
    text = str(error)
    assert "faulty_init" in text and "initialize" in text
    assert "ValueError" in text and "boom in initialize: bad widget count" in text
    assert "Traceback" in str(error.__cause__)  # the worker's traceback travels along
    assert good_container.get_plugin_status("faulty_init") is PluginStatus.ERROR
    # The failed load leaves no worker behind; the other plugins keep answering.
    wait_until(lambda: "faulty_init" not in plugin_pids(good_container),
               what="the failed worker to go")
    assert good_container.send_message(
        "design", Command(command_name="design:generate", arguments=["y"]))["doc"] == "# y"


def test_load_again_after_a_failed_load(good_container: PluginContainer, tmp_path: Path) -> None:
    """A failed load can be retried at once (fixed config): a fresh worker, really loaded."""
    folder = copy_plugin(PLUGINS / "bad" / "faulty", tmp_path, "retry")
    good_container.discover_plugins([folder])
    info = good_container.discovered_plugins["retry"]
    with pytest.raises(LifecycleError):
        good_container.load_plugin(info, config={"fail_in": "initialize"})
    good_container.load_plugin(info, config={})
    assert good_container.get_plugin_status("retry") is PluginStatus.INITIALIZED
    assert pid_alive(plugin_pids(good_container)["retry"])
    good_container.activate_plugin("retry")
    assert good_container.send_message("retry", Command(command_name="retry:ok")) == "ok"
    good_container.unload_plugin("retry")


def test_a_restart_that_fails_in_initialize_never_activates(
        good_container: PluginContainer, tmp_path: Path) -> None:
    """Restarts send load, initialize and activate at once: after a failed initialize the
    worker must skip activate, and a later restart that succeeds goes all the way."""
    folder = data_folder(DATA_HOME / "spec-kit-runtime", "witness")  # where it may write
    log, flag = folder / "phases.log", folder / "fail"
    good_container.discover_plugins([PLUGINS / "bad" / "witness"])
    good_container.load_plugin(good_container.discovered_plugins["witness"],
                               config={"log": str(log), "fail_flag": str(flag)})
    good_container.activate_plugin("witness")
    first = plugin_pids(good_container)["witness"]
    flag.touch()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len({line.split()[0] for line in log.read_text().splitlines()}) >= 3,
               timeout=10.0, what="two failed restarts")
    flag.unlink()
    wait_until(lambda: good_container.get_plugin_status("witness") is PluginStatus.ACTIVE
               and plugin_pids(good_container)["witness"] != first, timeout=15.0,
               what="a restart that succeeds")
    phases: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        pid, phase = line.split()
        phases.setdefault(pid, []).append(phase)
    last = str(plugin_pids(good_container)["witness"])
    assert phases.pop(str(first)) == ["initialize", "activate"]
    assert phases.pop(last) == ["initialize", "activate"]
    assert phases and all(seen == ["initialize"] for seen in phases.values()), phases
    good_container.unload_plugin("witness")


def test_activate_error_names_plugin_phase_and_exception(
        good_container: PluginContainer, tmp_path: Path) -> None:
    _load_faulty(good_container, tmp_path, "faulty_act", "activate")
    assert good_container.get_plugin_status("faulty_act") is PluginStatus.INITIALIZED
    with pytest.raises(LifecycleError) as caught:
        good_container.activate_plugin("faulty_act")
    error = caught.value
    assert error.plugin == "faulty_act"
    assert error.context["phase"] == "activate"
    assert error.context["exception"] == "RuntimeError"
    assert "boom in activate: no database" in str(error)
    assert good_container.get_plugin_status("faulty_act") is not PluginStatus.ACTIVE
    good_container.unload_plugin("faulty_act")
    assert good_container.get_plugin_status("faulty_act") is None


def test_subscribing_out_of_scope_in_register_services_fails_activation(
        good_container: PluginContainer, tmp_path: Path) -> None:
    _load_faulty(good_container, tmp_path, "faulty_reg", "register")
    with pytest.raises(LifecycleError) as caught:
        good_container.activate_plugin("faulty_reg")
    error = caught.value
    assert error.context["phase"] == "activate"
    assert error.context["exception"] == "ScopeError"
    assert ("may not handle 'command:design:generate': commands there belong to plugin "
            "'design'") in str(error)
    # design's command is still design's.
    assert good_container.send_message(
        "design", Command(command_name="design:generate", arguments=["z"]))["doc"] == "# z"
    good_container.unload_plugin("faulty_reg")


def test_import_error_at_load(good_container: PluginContainer) -> None:
    good_container.discover_plugins([PLUGINS / "bad" / "broken_import"])
    with pytest.raises(LifecycleError) as caught:
        good_container.load_plugin(good_container.discovered_plugins["broken_import"])
    error = caught.value
    assert error.plugin == "broken_import"
    assert error.context["phase"] == "load"
    assert error.context["exception"] == "ModuleNotFoundError"
    assert "spec_kit_tests_no_such_module" in str(error)
    assert good_container.get_plugin_status("broken_import") is PluginStatus.ERROR


def test_missing_entry_point_at_load(good_container: PluginContainer) -> None:
    good_container.discover_plugins([PLUGINS / "bad" / "no_entry"])
    with pytest.raises(LifecycleError) as caught:
        good_container.load_plugin(good_container.discovered_plugins["no_entry"])
    error = caught.value
    assert error.plugin == "no_entry"
    assert error.context["phase"] == "load"
    assert "MissingPlugin" in str(error)
    assert good_container.get_plugin_status("no_entry") is PluginStatus.ERROR


def test_status_through_the_lifecycle(good_container: PluginContainer, tmp_path: Path) -> None:
    folder = copy_plugin(PLUGINS / "bad" / "faulty", tmp_path, "cycle")
    good_container.discover_plugins([folder])
    assert good_container.get_plugin_status("cycle") is None
    good_container.load_plugin(good_container.discovered_plugins["cycle"], config={})
    assert good_container.get_plugin_status("cycle") is PluginStatus.INITIALIZED
    pid = plugin_pids(good_container)["cycle"]
    good_container.activate_plugin("cycle")
    assert good_container.get_plugin_status("cycle") is PluginStatus.ACTIVE
    assert good_container.send_message("cycle", Command(command_name="cycle:ok")) == "ok"
    good_container.deactivate_plugin("cycle")
    assert good_container.get_plugin_status("cycle") is PluginStatus.INITIALIZED
    good_container.unload_plugin("cycle")
    assert good_container.get_plugin_status("cycle") is None
    wait_until(lambda: not pid_alive(pid), what="the unloaded plugin's worker to exit")


def test_clients_over_tcp_loopback() -> None:
    """A private supervisor on any free loopback port; the container connects with CURVE
    (see test_curve.py)."""
    with running_container(endpoint="tcp://127.0.0.1:0") as container:
        load_active(container, GOOD, "design")
        endpoint = container.status()["supervisor"]["endpoint"]
        assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith(":0")
        reply = container.send_message("design", Command(command_name="design:generate",
                                                         arguments=["over", "tcp"]))
        assert reply
