"""Owned namespaces and operator grants against a hostile plugin, with real processes.

``rogue`` (tests/plugins/rogue) asks in its manifest for more than its default scope and
tries to take another plugin's namespace: through the documented registry and bus (its
worker refuses) and around them, on the wire (the supervisor refuses, and counts it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import GOOD, PLUGINS, copy_plugin, load_active, plugin_entry, running_container
from spec_kit_runtime import PluginContainer

pytestmark = pytest.mark.timeout(60)
GREEDY = ["*", "command:*", "command:design:*", "event:design:*", "generator:extra"]


def rogue(container: PluginContainer, action: str, *arguments: str) -> Any:
    return container.send_message("rogue", Command(command_name=f"rogue:{action}",
                                                   arguments=list(arguments)))


def start(container: PluginContainer, tmp_path: Path) -> None:
    load_active(container, GOOD, "design")
    folder = copy_plugin(PLUGINS / "rogue" / "rogue", tmp_path, "rogue",
                         allowed_messages=GREEDY)
    load_active(container, folder, "rogue")


def test_what_the_operator_did_not_grant_is_left_out_and_reported(tmp_path: Path) -> None:
    with running_container(plugins={"rogue": {}}) as container:
        events = container.follow_events()
        try:
            start(container, tmp_path)
            refused = next(e for e in events if e.event_name == "system:plugin_grants_refused")
        finally:
            events.close()
        assert refused.event_data == {"plugin": "rogue",
                                      "refused": ["*", "command:*", "command:design:*"]}
        assert plugin_entry(container, "rogue")["grants"] == {
            "granted": ["event:design:*", "generator:extra"],
            "refused": ["*", "command:*", "command:design:*"]}
        sent = rogue(container, "send", "design:generate", "x")
        assert sent["ok"] is False and "outside its scope" in sent["message"]


def test_an_operator_grant_lets_it_send_there_but_never_handle(tmp_path: Path) -> None:
    with running_container(plugins={"rogue": {"grant": ["command:*"]}}) as container:
        start(container, tmp_path)
        sent = rogue(container, "send", "design:generate", "x")
        assert sent == {"ok": True, "result": {"doc": "# x", "options": {}}}
        for pattern in ("command:design:shutdown", "command:*", "request:core:*", "*"):
            taken = rogue(container, "subscribe", pattern)
            assert taken["ok"] is False, pattern
            assert f"may not handle '{pattern}'" in taken["message"]
        emitted = rogue(container, "emit", "design:done")
        assert emitted["ok"] is False and "belong to plugin 'design'" in emitted["message"]
        # Around the worker's checks: the supervisor refuses too, and design keeps its own.
        assert rogue(container, "force_subscribe", "command:design:generate")["ok"]
        assert "command:design:generate" not in plugin_entry(container, "rogue")["subscriptions"]
        assert container.send_message("design", Command(
            command_name="design:generate", arguments=["mine"]))["doc"] == "# mine"


def test_a_worker_that_keeps_trying_is_killed_and_restarted(tmp_path: Path) -> None:
    """Each record refused on the supervisor's side is an offence: 20 within 10 s and the
    worker is killed (and restarted by its policy); design is untouched."""
    with running_container(plugins={"rogue": {}}) as container:
        start(container, tmp_path)
        design_pid = plugin_entry(container, "design")["pid"]
        for attempt in range(40):
            try:
                rogue(container, "force_subscribe", f"command:design:x{attempt}")
            except Exception:  # its worker was killed under it
                break
        entry = plugin_entry(container, "rogue")
        assert "protocol violation" in (entry["last_exit"] or ""), entry
        assert plugin_entry(container, "design")["pid"] == design_pid


def test_no_plugin_outranks_the_host_on_shared_kinds(tmp_path: Path) -> None:
    """Priorities below 0 are the host application's: a plugin asking for one is refused
    in its worker, and on the wire (where it is an offence)."""
    with running_container(plugins={"rogue": {}}) as container:
        start(container, tmp_path)
        asked = container.send_message("rogue", Command(
            command_name="rogue:subscribe", arguments=["validator:python"],
            options={"priority": -1000}))
        assert asked["ok"] is False and "below 0" in asked["message"]
        forced = container.send_message("rogue", Command(
            command_name="rogue:force_subscribe", arguments=["validator:python"],
            options={"priority": -1000}))
        assert forced["ok"]
        assert "validator:python" not in plugin_entry(container, "rogue")["subscriptions"]
