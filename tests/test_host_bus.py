"""``container.message_bus``: the host application's 1.0 bus, over real processes.

The host sends by address with no plugin's scope, and its handlers (``subscribe``) live in
its own process where plugins reach them, 1.0 topics (``core.*``) and two-parameter
handlers included.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command, Event, Message, Request, Response

from conftest import PLUGINS, wait_until
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.client.host_bus import host_pattern
from spec_kit_runtime.errors import NoHandlerError, RoutingError, ScopeError
from spec_kit_runtime.inprocess.message_bus import DeliveryMode

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("pattern", "address"), [
    ("core.*", "request:core:*"),
    ("core.get_spec", "request:core:get_spec"),
    ("a.b.c", "request:a:b:c"),
    ("request:core:*", "request:core:*"),
    ("event:design:*", "event:design:*"),
    ("event:project.initialized", "event:project.initialized"),
    ("*", "*"),
])
def test_host_pattern(pattern: str, address: str) -> None:
    assert host_pattern(pattern) == address


@pytest.fixture
def asker(container: PluginContainer) -> PluginContainer:
    container.discover_plugins([PLUGINS / "host"])
    container.load_plugin(container.discovered_plugins["asker"], {})
    container.activate_plugin("asker")
    return container


def test_send_returns_the_handlers_result(asker: PluginContainer) -> None:
    handled: list[Message] = []
    asker.message_bus.subscribe("request:core:*", lambda m: handled.append(m) or {"n": 1})
    assert asker.message_bus.send(Command(command_name="asker:ask")) == {
        "type": "dict", "value": {"n": 1}}
    assert handled[0].source == "asker"  # stamped by the supervisor: the plugin's own id


def test_a_command_nobody_handles_is_an_error(asker: PluginContainer) -> None:
    with pytest.raises(NoHandlerError, match="no plugin handles 'command:nobody:here'"):
        asker.message_bus.send(Command(command_name="nobody:here"))


def test_only_sync_delivery(asker: PluginContainer) -> None:
    with pytest.raises(ValueError, match="SYNC only, not ASYNC"):
        asker.message_bus.send(Command(command_name="asker:ask"), DeliveryMode.ASYNC)


def test_a_topic_subscription_serves_the_namespaces_requests_with_address(
        asker: PluginContainer) -> None:
    """What SpecKitCore's bridge does: ``subscribe("core.*", handler(topic, message))``,
    answering with a contracts Response, which the plugin receives as one."""
    seen: list[tuple[str, str]] = []

    def core(topic: str, message: Any) -> Response:
        seen.append((topic, message.method))
        return Response(request_id=message.id, success=True, result={"echo": message.params})

    asker.message_bus.subscribe("core.*", core)
    answer = asker.message_bus.send(Command(command_name="asker:ask",
                                            arguments=["core:get_spec"], options={"f": "x"}))
    assert answer == {"type": "Response", "success": True, "result": {"echo": {"f": "x"}},
                      "error": None}
    assert seen == [("request:core:get_spec", "core:get_spec")]


def test_events_reach_host_handlers_and_the_sender_learns_how_many(
        asker: PluginContainer) -> None:
    got: list[Any] = []
    arrived = threading.Event()

    def on_event(event: Any) -> None:
        got.append(event.event_data)
        arrived.set()

    asker.message_bus.subscribe("event:asker:*", on_event)
    assert asker.message_bus.send(Command(command_name="asker:announce",
                                          arguments=["hi"])) == 1
    assert arrived.wait(10.0)
    assert got == [{"words": ["hi"]}]
    assert asker.message_bus.send(Event(event_name="host:said", event_data={})) == 0


def test_unsubscribe(asker: PluginContainer) -> None:
    sub = asker.message_bus.subscribe("request:core:*", lambda m: 1)
    assert asker.message_bus.unsubscribe(sub) is True
    assert asker.message_bus.unsubscribe(sub) is False
    with pytest.raises(NoHandlerError, match="no plugin handles 'request:core:check'"):
        asker.message_bus.send(Command(command_name="asker:ask"))


def test_the_host_may_not_emit_system_events_nor_subscribe_bad_patterns(
        asker: PluginContainer) -> None:
    with pytest.raises(ScopeError):
        asker.message_bus.send(Event(event_name="system:fake", event_data={}))
    with pytest.raises(RoutingError, match="invalid pattern"):
        asker.message_bus.subscribe("request:core:[abc]", lambda m: 1)


def test_a_host_handler_may_use_the_container(asker: PluginContainer) -> None:
    """A plugin asks the host, whose handler calls back into a plugin meanwhile."""
    asker.message_bus.subscribe(
        "request:core:*", lambda m: asker.message_bus.send(Command(command_name="asker:announce")))
    assert asker.message_bus.send(Command(command_name="asker:ask"))["value"] == 0
    wait_until(lambda: asker.get_plugin_status("asker") is not None)


def test_plugin_handlers_stay_scoped(asker: PluginContainer) -> None:
    """container.subscribe keeps the plugin's scope; only the host bus has the host's."""
    with pytest.raises(ScopeError):
        asker.subscribe("asker", "request:other:*", lambda m: 1)
    asker.message_bus.subscribe("request:other:*", lambda m: 2)
    assert asker.message_bus.send(Request(method="other:x")) == 2


def test_a_host_handler_that_never_returns_does_not_keep_the_process_alive(
        tmp_path: Path) -> None:
    """Host handlers run on daemon threads: a caller whose core handler hangs still exits
    when its main thread is done (a thread pool joined at exit kept it alive for ever)."""
    script = tmp_path / "hangs.py"
    script.write_text(textwrap.dedent(f"""
        import threading
        from spec_kit_contracts import Command
        from spec_kit_runtime import PluginContainer
        from spec_kit_runtime.errors import RuntimeFailure
        container = PluginContainer({{"log_level": "WARNING"}})
        container.discover_plugins([__import__("pathlib").Path({str(PLUGINS / "host")!r})])
        container.load_plugin(container.discovered_plugins["asker"], {{}})
        container.activate_plugin("asker")
        entered = threading.Event()
        container.message_bus.subscribe(
            "request:core:*", lambda m: (entered.set(), threading.Event().wait()))
        try:
            container.message_bus.send(Command(command_name="asker:ask",
                                               options={{"timeout": 0.3}}))
        except RuntimeFailure as exc:
            print("timed out:", type(exc).__name__, entered.is_set(), flush=True)
        container.shutdown()
        print("main done", flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "timed out: DeadlineExceeded True" in done.stdout
    assert "main done" in done.stdout
