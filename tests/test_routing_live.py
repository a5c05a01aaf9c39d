"""Scoped routing through a live supervisor: scope checks on both sides, source stamping,
unknown targets and plugins that are not active.

The ``rogue`` plugin tries to leave its scope from inside its worker, once through the
documented handle (the worker refuses) and once straight on the wire (the supervisor
must refuse: the worker is not trusted).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command, Event, Request

from conftest import GOOD, PLUGINS, copy_plugin, load_active, running_container, track
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import (
    NoHandlerError,
    PluginNotActiveError,
    RuntimeFailure,
    ScopeError,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def live() -> Iterator[PluginContainer]:
    with running_container() as container:
        container.discover_plugins([GOOD, PLUGINS / "rogue"])
        for plugin_id in ("design", "audit", "rogue"):
            container.load_plugin(container.discovered_plugins[plugin_id], config={})
            container.activate_plugin(plugin_id)
        track(container)
        yield container


def rogue(container: PluginContainer, action: str, *arguments: str) -> Any:
    return container.send_message("rogue", Command(command_name=f"rogue:{action}",
                                                   arguments=list(arguments)))


def subscriptions(container: PluginContainer, plugin_id: str) -> list[str]:
    (entry,) = [p for p in container.status()["plugins"] if p["id"] == plugin_id]
    return list(entry["subscriptions"])


def generate(container: PluginContainer) -> Any:
    return container.send_message(
        "design", Command(command_name="design:generate", arguments=["mine"]))


# -- sends from the caller -----------------------------------------------------------------

def test_send_out_of_scope_is_refused(live: PluginContainer) -> None:
    with pytest.raises(ScopeError) as caught:
        live.send_message("audit", Command(command_name="design:generate", arguments=["x"]))
    assert "audit" in str(caught.value) and "command:design:generate" in str(caught.value)


def test_caller_may_not_emit_system_events(live: PluginContainer) -> None:
    with pytest.raises(ScopeError, match="belong to the supervisor"):
        live.send_message("design", Event(event_name="system:shutdown"))


def test_unknown_target_is_no_handler(live: PluginContainer) -> None:
    with pytest.raises(NoHandlerError, match="validator:cobol"):
        live.send_message("design", Request(method="validator:cobol"))


def test_unknown_sending_plugin_is_refused(live: PluginContainer) -> None:
    with pytest.raises(RuntimeFailure, match="ghost"):
        live.send_message("ghost", Command(command_name="ghost:x"))


def test_deactivated_plugin_is_not_active(live: PluginContainer, tmp_path: Path) -> None:
    folder = copy_plugin(PLUGINS / "bad" / "faulty", tmp_path, "sleepy")
    load_active(live, folder, "sleepy")
    assert live.send_message("sleepy", Command(command_name="sleepy:ok")) == "ok"
    live.deactivate_plugin("sleepy")
    try:
        with pytest.raises(PluginNotActiveError) as caught:
            live.send_message("sleepy", Command(command_name="sleepy:ok"))
        assert "sleepy" in str(caught.value)
    finally:
        live.unload_plugin("sleepy")


# -- source stamping -----------------------------------------------------------------------

def test_caller_source_is_stamped_with_the_sending_plugin(live: PluginContainer) -> None:
    reply = live.send_message("design", Request(method="audit:whoami", source="audit"))
    assert reply == {"source": "design"}


def test_plugin_cannot_speak_as_another(live: PluginContainer) -> None:
    # design claims to be audit from inside its worker; audit sees design.
    relayed = live.send_message(
        "design", Command(command_name="design:relay", options={"claim": "audit"}))
    assert relayed == {"source": "design"}
    forged = rogue(live, "forge_source", "design")
    assert forged == {"ok": True, "result": {"source": "rogue"}}


def test_worker_cannot_borrow_another_scope_on_the_wire(live: PluginContainer) -> None:
    # A Send from a worker naming design in as_plugin: the supervisor uses rogue's scope.
    outcome = rogue(live, "raw_as_plugin", "design")
    assert outcome["ok"] is False, outcome
    assert outcome["error"] == "scope"
    assert "rogue" in outcome["message"]


# -- subscriptions from inside a worker ----------------------------------------------------

def test_subscribe_outside_scope_is_refused_in_the_worker(live: PluginContainer) -> None:
    outcome = rogue(live, "subscribe", "command:design:*")
    assert outcome["ok"] is False
    assert outcome["error"] == "ScopeError"
    assert "may not handle 'command:design:*'" in outcome["message"]
    assert "command:design:*" not in subscriptions(live, "rogue")


def test_supervisor_refuses_out_of_scope_subscription_from_the_wire(
        live: PluginContainer) -> None:
    # Control: an in-scope subscription sent the same way is accepted ...
    assert rogue(live, "force_subscribe", "command:rogue:extra")["ok"]
    assert "command:rogue:extra" in subscriptions(live, "rogue")
    # ... an out-of-scope one (that would outrank design's own handler) is not.
    assert rogue(live, "force_subscribe", "command:design:generate")["ok"]
    assert "command:design:generate" not in subscriptions(live, "rogue")
    assert generate(live)["doc"] == "# mine"


def test_plugin_may_not_emit_system_events(live: PluginContainer) -> None:
    through_bus = rogue(live, "emit", "system:fake_crash")
    assert through_bus["ok"] is False
    assert through_bus["error"] == "ScopeError"
    assert "belong to the supervisor" in through_bus["message"]

    on_the_wire = rogue(live, "raw_emit", "system:fake_crash")
    assert on_the_wire["ok"] is False
    assert on_the_wire["error"] == "ScopeError"
    assert "belong to the supervisor" in on_the_wire["message"]

    # audit subscribes to event:system:* and saw nothing of it.
    seen = live.send_message("audit", Request(method="audit:seen"))
    assert not [e for e in seen if e["event"] == "system:fake_crash"]
