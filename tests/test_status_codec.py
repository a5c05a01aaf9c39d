"""The status, health and plugins answers' codec by table: plain data round-trips through
the records exactly (same keys, same order, same types), unknown keys are ignored, and a
missing key or a mistyped value is a ProtocolError naming it. One live check holds the
real answers to the same form."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conftest import GOOD, load_active, running_container
from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.policy.health import Health
from spec_kit_runtime.policy.restart import RestartType
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import ControlOp
from spec_kit_runtime.wire.status import (
    PluginEntry,
    Status,
    from_data,
    plugin_entries,
    to_data,
)

SUPERVISOR: dict[str, Any] = {
    "pid": 7, "version": "2.0", "endpoint": "ipc:///run/clients.sock", "uptime": 12.0,
    "plugins": 1, "forkserver_pid": 8, "start_method": "fork",
    "cgroups": {"active": False, "reason": "no cgroup v1 hierarchy"},
    "http": None, "log_file": None,
    "totals": {"handled": 30, "errors": 0, "in_flight": 0, "restarts": 1},
}
PLUGIN: dict[str, Any] = {
    "id": "design", "name": "Design", "version": "1.2.0", "state": "active", "pid": 42,
    "uptime": 4.25, "busy": None, "queued": [], "last_exit": "killed by SIGKILL",
    "last_exit_at": 812.5, "last_error": None, "sandbox": True, "restarts": 1,
    "restart_type": "permanent",
    "grants": {"granted": ["event:audit:*"], "refused": ["command:audit:*"]},
    "limits": {"memory_mb": 1024, "cpu_seconds": None, "open_files": 1024,
               "cpu_percent": None, "cpu_window": 60.0, "max_processes": 32,
               "output_kb_per_s": 256},
    "output": {"logged_bytes": 10, "dropped_bytes": 0, "dropped_lines": 0},
    "messages": {"handled": 30, "errors": 0, "in_flight": 0, "p50_ms": 1.25, "p99_ms": 3.0},
    "cgroups": [], "hardening": {"landlock": True, "network_namespace": "not permitted"},
    "usage": {"rss_mb": 19.0, "cpu_percent": 2.5, "processes": 1, "open_files": 9},
    "subscriptions": ["command:design:*"],
    "waiting": 0,
}
STOPPED = PLUGIN | {"state": "stopped", "pid": None, "uptime": None, "busy": "start",
                    "queued": ["restart"], "last_error": "x", "usage": None,
                    "cgroups": [], "hardening": {}}
STATUS = {"supervisor": SUPERVISOR, "plugins": [PLUGIN, STOPPED]}
HEALTH = {"status": "degraded", "live": True, "ready": False, "reasons": ["b: restarting"]}
ENTRY = {"state": "loading", "loaded": False, "generation": 0, "facts": None}


@pytest.mark.parametrize(("record", "data"), [
    (Status, STATUS),
    (Status, {"supervisor": SUPERVISOR | {"http": "127.0.0.1:9464", "log_file": "/l"},
              "plugins": []}),
    (Status, {"supervisor": SUPERVISOR, "plugins": [PLUGIN | {"state": "warming up"}]}),
    (Status, {"supervisor": SUPERVISOR | {"uptime": 12}, "plugins": []}),  # an int for a float
    (Health, HEALTH),
    (Health, {"status": "healthy", "live": True, "ready": True, "reasons": []}),
    (PluginEntry, ENTRY),
    (PluginEntry, ENTRY | {"loaded": True, "generation": 2, "facts": {"metadata": {}}}),
], ids=lambda value: getattr(value, "__name__", ""))
def test_plain_data_round_trips_exactly(record: type, data: dict[str, Any]) -> None:
    again = to_data(from_data(record, data))
    assert json.dumps(again) == json.dumps(data)  # keys in the same order
    assert codec.pack_value(again) == codec.pack_value(data)  # the same msgpack, types too


def test_records_read_as_attributes() -> None:
    status = from_data(Status, STATUS)
    design, stopped = status.plugins
    assert status.supervisor.totals.handled == 30 and status.supervisor.http is None
    assert design.messages.p50_ms == 1.25 and design.usage is not None
    assert design.usage.rss_mb == 19.0 and design.output.dropped_bytes == 0
    assert design.state == PluginState.ACTIVE and design.restart_type is RestartType.PERMANENT
    assert design.grants.refused == ("command:audit:*",) and design.limits.memory_mb == 1024
    assert stopped.usage is None and stopped.queued == ("restart",)
    assert from_data(Health, HEALTH) == Health("degraded", True, False, ("b: restarting",))


def test_enum_members_become_their_text() -> None:
    """The wire codec refuses enum members: the plain data holds none."""
    entry = to_data(PluginEntry(PluginState.LOADING, False, 0, None))
    assert entry == ENTRY and type(entry["state"]) is str
    assert type(to_data(from_data(Status, STATUS))["plugins"][0]["restart_type"]) is str


def _with(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``data`` with the key at ``path`` (dotted; a number picks a list item) set, or
    deleted when ``value`` is ``...``."""
    changed = copy.deepcopy(data)
    *parents, last = (int(key) if key.isdigit() else key for key in path.split("."))
    place: Any = changed
    for key in parents:
        place = place[key]
    if value is ...:
        del place[last]
    else:
        place[last] = value
    return changed


@pytest.mark.parametrize("path", ["extra", "supervisor.extra", "supervisor.totals.extra",
                                  "plugins.0.extra", "plugins.0.messages.extra",
                                  "plugins.0.usage.extra", "plugins.0.limits.extra"])
def test_unknown_keys_are_ignored(path: str) -> None:
    assert from_data(Status, _with(STATUS, path, "new")) == from_data(Status, STATUS)


@pytest.mark.parametrize(("path", "value", "why"), [
    ("supervisor", ..., "Status.supervisor is missing"),
    ("supervisor.totals.restarts", ..., "Status.supervisor.totals.restarts is missing"),
    ("plugins.1.state", ..., r"Status.plugins\[1\].state is missing"),
    ("plugins.0.usage.rss_mb", ..., r"Status.plugins\[0\].usage.rss_mb is missing"),
    ("plugins.0.subscriptions", ..., "subscriptions is missing"),
    ("supervisor", [], "Status.supervisor must be a map"),
    ("plugins", {}, "Status.plugins must be a list"),
    ("supervisor.uptime", "12", "Status.supervisor.uptime must be float"),
    ("supervisor.pid", True, "Status.supervisor.pid must be int"),
    ("supervisor.plugins", 1.0, "Status.supervisor.plugins must be int"),
    ("plugins.0.pid", "42", r"Status.plugins\[0\].pid must be int"),
    ("plugins.0.sandbox", 1, "sandbox must be bool"),
    ("plugins.0.state", None, "state must be str"),
    ("plugins.0.queued", "restart", "queued must be a list"),
    ("plugins.0.subscriptions.0", 5, r"subscriptions\[0\] must be str"),
    ("plugins.0.hardening", [], "hardening must be dict"),
    ("plugins.0.restart_type", "sometimes", "'sometimes' is not a RestartType"),
    ("plugins.0.usage", "none", "usage must be a map"),
])
def test_missing_or_mistyped_is_a_protocol_error(path: str, value: Any, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        from_data(Status, _with(STATUS, path, value))


@pytest.mark.parametrize(("data", "why"), [
    ({"status": "healthy", "live": True, "ready": True}, "Health.reasons is missing"),
    (["healthy"], "Health must be a map"),
])
def test_a_malformed_health_answer_is_a_protocol_error(data: Any, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        from_data(Health, data)


def test_the_plugins_answer_is_a_map_of_entries() -> None:
    assert plugin_entries({"design": ENTRY}) == {"design": PluginEntry("loading", False, 0,
                                                                        None)}
    assert plugin_entries({}) == {}
    with pytest.raises(ProtocolError, match="must be a map"):
        plugin_entries([ENTRY])
    with pytest.raises(ProtocolError, match=r"plugins\['design'\].generation is missing"):
        plugin_entries({"design": {"state": "active", "loaded": True, "facts": None}})


def test_a_real_supervisors_answers_have_this_form() -> None:
    """The keys, in order, that the answers had before they were records; and each real
    answer round-trips through its record exactly."""
    with running_container() as container:
        load_active(container, GOOD, "design")
        status, health = container.status(), container.health()
        entries = container._control(ControlOp.PLUGINS)  # what container.plugins reads
    assert list(status) == list(STATUS)
    assert list(status["supervisor"]) == list(SUPERVISOR)
    assert list(status["supervisor"]["totals"]) == list(SUPERVISOR["totals"])
    (design,) = status["plugins"]
    assert list(design) == list(PLUGIN)
    for key in ("grants", "limits", "output", "messages", "usage"):
        assert design[key] is None or list(design[key]) == list(PLUGIN[key]), key
    assert list(health) == list(HEALTH) and list(entries["design"]) == list(ENTRY)
    for record, data in ((Status, status), (Health, health)):
        assert codec.pack_value(to_data(from_data(record, data))) == codec.pack_value(data)
    assert {plugin_id: to_data(entry) for plugin_id, entry in
            plugin_entries(entries).items()} == entries
