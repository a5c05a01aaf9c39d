"""The supervisor's parts together on fake ports (supervisor_fakes): a plugin's whole life,
load to crash to restart, without a process or a socket. The parts' own tables are in
test_router_units, test_lifecycle_units, test_recovery_units and test_control_units."""

from __future__ import annotations

from pathlib import Path

from supervisor_fakes import Answer, Core, manifest


def test_load_activate_crash_and_restart_run_on_fake_ports(tmp_path: Path) -> None:
    core = Core()
    loaded = core.load(manifest(tmp_path, "a"))
    assert [s.slot.plugin_id for s in core.workers.spawns] == ["a"] and loaded.ok is None
    core.started("a")
    core.hello("a")
    assert core.answer("a") == ["load", "initialize"]
    assert loaded.ok and loaded.value["status"] == "initialized"

    activated = Answer()
    core.lifecycle.activate("a", activated)
    assert core.answer("a", "active") == ["activate"]
    assert activated.ok and core.slots["a"].active

    core.exit("a")  # SIGKILLed, no operation under way: the restart policy decides
    assert core.slots["a"].status == "restarting"
    assert core.event_names()[-2:] == ["plugin_crashed", "plugin_restarting"]
    assert len(core.workers.spawns) == 1  # not inline: after the backoff
    core.clock.advance(1.0)
    assert len(core.workers.spawns) == 2
    core.up("a", "active")
    assert core.slots["a"].status == "active" and core.slots["a"].restarts == 1
    assert core.event_names()[-1] == "plugin_restarted"
