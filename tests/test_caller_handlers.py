"""PluginContainer.subscribe: handlers living in the caller, reached from plugins."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from spec_kit_contracts import Command, Message, Request

from spec_kit_runtime import HandlerError, PluginContainer, ScopeError

EXAMPLES = Path(__file__).resolve().parents[1] / "configs" / "plugins"


@pytest.fixture(scope="module")
def container() -> Iterator[PluginContainer]:
    box = PluginContainer()
    try:
        box.discover_plugins([EXAMPLES])
        for plugin_id in ("design", "audit"):
            box.load_plugin(box.discovered_plugins[plugin_id])
            box.activate_plugin(plugin_id)
        yield box
    finally:
        box.shutdown()


def test_event_from_a_plugin_reaches_a_caller_handler(container: PluginContainer) -> None:
    seen: list[tuple[str, str]] = []
    arrived = threading.Event()

    def on_event(event: Message) -> None:
        seen.append((event.event_name, event.source))
        arrived.set()

    sub = container.subscribe("audit", "event:design:*", on_event)
    try:
        container.send_message("design", Command(command_name="design:generate", arguments=["T"]))
        assert arrived.wait(5)
        assert seen == [("design:generated", "design")]  # source stamped by the supervisor
    finally:
        assert container.unsubscribe(sub)
    assert not container.unsubscribe(sub)


def test_caller_hook_runs_in_priority_order_with_plugins(container: PluginContainer) -> None:
    sub = container.subscribe("design", "hook:post_save", lambda m: {"caller": m.params}, 5)
    try:
        result = container.send_message("design", Request(method="hook:post_save",
                                                          params={"f": 1}))
        assert result == [{"caller": {"f": 1}}, {"audited": True}]
    finally:
        container.unsubscribe(sub)


def test_caller_handler_errors_and_scope(container: PluginContainer) -> None:
    def broken(message: Message) -> None:
        raise ValueError("caller side broke")

    sub = container.subscribe("design", "validator:broken", broken)
    try:
        with pytest.raises(HandlerError, match="caller side broke"):
            container.send_message("design", Request(method="validator:broken"))
    finally:
        container.unsubscribe(sub)
    with pytest.raises(ScopeError, match="commands there belong to plugin 'audit'"):
        container.subscribe("design", "command:audit:*", broken)
