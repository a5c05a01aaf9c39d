"""The in-process bus: 1.0's README example, delivery rules, scopes and delivery modes."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pytest
from spec_kit_contracts import Command, Event, MessageContractError, Request

from spec_kit_runtime.errors import NoHandlerError, RoutingError, ScopeError
from spec_kit_runtime.inprocess.message_bus import DeliveryMode, MessageBus, ScopedMessageBus

WAIT = 5.0


@pytest.fixture
def bus() -> ScopedMessageBus:
    b = ScopedMessageBus()
    b.start()
    yield b
    b.stop()


def test_readme_example_runs_as_written() -> None:
    def handler(message: Any) -> dict[str, Any]:
        return {"generated": message.command_name, "by": message.metadata["source_plugin"]}

    command_message = Command(command_name="design:generate")

    bus = ScopedMessageBus()
    bus.start()
    bus.register_scope("design", [
        "command:design:*",
        "event:system:*",
    ])
    bus.subscribe_scoped("design", "command:design:generate", handler)
    result = bus.send_scoped("design", command_message)
    bus.stop()

    assert result == {"generated": "design:generate", "by": "design"}
    assert command_message.source == "design"


def test_delivery_mode_values_are_1_0s() -> None:
    assert [m.value for m in DeliveryMode] == ["sync", "async", "queued", "broadcast"]


def test_one_handler_highest_priority_then_oldest(bus: MessageBus) -> None:
    bus.subscribe("command:a:*", lambda m: "wildcard-late", priority=60)
    bus.subscribe("command:a:go", lambda m: "first-10", priority=10)
    bus.subscribe("command:a:go", lambda m: "second-10", priority=10)
    assert bus.send(Command(command_name="a:go")) == "first-10"


def test_hooks_call_every_handler_in_priority_order(bus: MessageBus) -> None:
    bus.subscribe("hook:post_save", lambda m: "late", priority=90)
    bus.subscribe("hook:*", lambda m: "early", priority=5)
    bus.subscribe("hook:post_save", lambda m: "middle")
    assert bus.send(Request(method="hook:post_save")) == ["early", "middle", "late"]


def test_hook_without_handlers_is_an_empty_list(bus: MessageBus) -> None:
    assert bus.send(Request(method="hook:nobody")) == []


def test_events_fan_out_count_and_survive_a_failing_subscriber(bus: MessageBus) -> None:
    seen: list[str] = []

    def boom(message: Any) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe("event:design:done", lambda m: seen.append("exact"))
    bus.subscribe("event:design:done", boom, priority=1)
    bus.subscribe("event:*", lambda m: seen.append("wildcard"), priority=99)
    assert bus.send(Event(event_name="design:done")) == 2
    assert seen == ["exact", "wildcard"]
    assert bus.send(Event(event_name="nobody:listens")) == 1  # only event:*


def test_no_handler_raises(bus: MessageBus) -> None:
    with pytest.raises(NoHandlerError, match="command:ghost:run") as info:
        bus.send(Command(command_name="ghost:run"))
    assert isinstance(info.value, MessageContractError)  # 1.0 callers still catch it


def test_handler_exception_reaches_the_sender(bus: MessageBus) -> None:
    def broken(message: Any) -> None:
        raise ValueError("bad input")

    bus.subscribe("request:calc:div", broken)
    with pytest.raises(ValueError, match="bad input"):
        bus.send(Request(method="calc:div"))


def test_validator_request_reaches_validator_subscription(bus: MessageBus) -> None:
    bus.subscribe("validator:python", lambda m: {"valid": True, "code": m.params["code"]})
    reply = bus.send(Request(method="validator:python", params={"code": "x = 1"}))
    assert reply == {"valid": True, "code": "x = 1"}


@pytest.mark.parametrize("pattern", ["", "command:[ab]", "command:a?", "has space", 7])
def test_bad_patterns_are_refused(bus: MessageBus, pattern: Any) -> None:
    with pytest.raises(RoutingError):
        bus.subscribe(pattern, lambda m: None)


def test_filter_declines_and_transform_rewrites(bus: MessageBus) -> None:
    bus.subscribe("command:a:go", lambda m: "filtered", priority=1, filter=lambda m: False)
    bus.subscribe("command:a:go", lambda m: m, transform=lambda m: m.arguments)
    assert bus.send(Command(command_name="a:go", arguments=["x"])) == ["x"]


def test_unsubscribe_invalidates_the_cached_route(bus: MessageBus) -> None:
    sub = bus.subscribe("command:a:go", lambda m: "yes")
    assert bus.send(Command(command_name="a:go")) == "yes"
    assert bus.get_statistics()["cached_addresses"] == 1
    assert bus.unsubscribe(sub) is True
    assert bus.unsubscribe(sub) is False
    with pytest.raises(NoHandlerError):
        bus.send(Command(command_name="a:go"))


def test_middleware_can_drop_and_be_removed(bus: MessageBus) -> None:
    bus.subscribe("command:a:go", lambda m: "handled")

    def drop(message: Any) -> None:
        return None

    bus.add_middleware(drop)
    assert bus.send(Command(command_name="a:go")) is None
    assert bus.remove_middleware(drop) is True
    assert bus.remove_middleware(drop) is False
    assert bus.send(Command(command_name="a:go")) == "handled"


def test_broadcast_calls_every_matching_handler(bus: MessageBus) -> None:
    bus.subscribe("command:a:go", lambda m: 1)
    bus.subscribe("command:a:*", lambda m: 2, priority=70)
    assert bus.send(Command(command_name="a:go"), DeliveryMode.BROADCAST) == [1, 2]


def test_async_returns_a_future(bus: MessageBus) -> None:
    bus.subscribe("request:calc:add", lambda m: m.params["a"] + m.params["b"])
    bus.subscribe("request:calc:fail", lambda m: 1 / 0)
    future = bus.send(Request(method="calc:add", params={"a": 2, "b": 3}), DeliveryMode.ASYNC)
    assert isinstance(future, Future)
    assert future.result(timeout=WAIT) == 5
    failing = bus.send(Request(method="calc:fail"), DeliveryMode.ASYNC)
    assert isinstance(failing.exception(timeout=WAIT), ZeroDivisionError)


def test_queued_messages_are_delivered_by_the_bus_thread(bus: MessageBus) -> None:
    delivered = threading.Event()
    bus.subscribe("event:a:tick", lambda m: delivered.set())
    assert bus.send(Event(event_name="a:tick"), DeliveryMode.QUEUED) is True
    assert delivered.wait(WAIT)


def test_queue_full_returns_false_and_stop_drains_the_rest() -> None:
    bus = MessageBus(max_queue_size=2)
    got: list[str] = []
    bus.subscribe("event:a:*", lambda m: got.append(m.event_name))
    sends = [bus.send(Event(event_name=f"a:{i}"), DeliveryMode.QUEUED) for i in range(3)]
    assert sends == [True, True, False]
    assert bus.get_statistics()["messages_dropped"] == 1
    bus.start()
    bus.stop()
    assert got == ["a:0", "a:1"]
    assert bus.get_statistics()["is_running"] is False


def test_statistics_keep_1_0_keys(bus: MessageBus) -> None:
    bus.subscribe("command:a:*", lambda m: None)
    stats = bus.get_statistics()
    assert {"handlers_count", "patterns_count", "subscriptions_count", "queue_size",
            "middleware_count", "is_running"} <= stats.keys()
    assert stats["subscriptions_count"] == 1 and stats["is_running"] is True


def test_handlers_may_subscribe_while_handling(bus: MessageBus) -> None:
    def first(message: Any) -> str:
        bus.subscribe("command:b:go", lambda m: "late joiner")
        return "first"

    bus.subscribe("command:a:go", first)
    assert bus.send(Command(command_name="a:go")) == "first"
    assert bus.send(Command(command_name="b:go")) == "late joiner"


def test_concurrent_subscribe_and_send(bus: MessageBus) -> None:
    bus.subscribe("event:load:*", lambda m: None)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(200):
                sub = bus.subscribe(f"event:load:{n}", lambda m: None)
                assert bus.send(Event(event_name=f"load:{n}")) >= 2
                bus.unsubscribe(sub)
                bus.send(Event(event_name=f"load:{i}"))
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 4)
    assert errors == []
    assert bus.get_statistics()["subscriptions_count"] == 1


# -- scopes ----------------------------------------------------------------------------


@pytest.fixture
def scoped(bus: ScopedMessageBus) -> ScopedMessageBus:
    bus.register_scope("design", ["command:review:request"])
    return bus


def test_plugins_may_not_emit_system_events(scoped: ScopedMessageBus) -> None:
    message = Event(event_name="system:started")
    with pytest.raises(ScopeError, match="belong to the supervisor"):
        scoped.send_scoped("design", message)
    assert "source_plugin" not in message.metadata  # refused messages are left untouched


def test_plugins_may_subscribe_to_system_events(scoped: ScopedMessageBus) -> None:
    scoped.subscribe_scoped("design", "event:system:*", lambda m: None)
    assert scoped.send(Event(event_name="system:started")) == 1


def test_subscribing_outside_the_scope_is_refused(scoped: ScopedMessageBus) -> None:
    with pytest.raises(ScopeError, match="command:other"):
        scoped.subscribe_scoped("design", "command:other:*", lambda m: None)
    with pytest.raises(ScopeError):
        scoped.subscribe_scoped("design", "command:*", lambda m: None)  # wider than scope


def test_sending_outside_the_scope_is_refused(scoped: ScopedMessageBus) -> None:
    scoped.subscribe("command:other:run", lambda m: "should not run")
    with pytest.raises(ScopeError, match="outside its scope"):
        scoped.send_scoped("design", Command(command_name="other:run"))


def test_manifest_patterns_widen_the_scope(scoped: ScopedMessageBus) -> None:
    scoped.subscribe("command:review:request", lambda m: m.metadata["source_plugin"])
    assert scoped.send_scoped("design", Command(command_name="review:request")) == "design"


def test_unknown_plugin_is_a_scope_error(scoped: ScopedMessageBus) -> None:
    with pytest.raises(ScopeError, match="no registered scope"):
        scoped.subscribe_scoped("ghost", "command:ghost:*", lambda m: None)
    with pytest.raises(ScopeError):
        scoped.send_scoped("ghost", Command(command_name="ghost:x"))


def test_bad_scope_pattern_is_refused(bus: ScopedMessageBus) -> None:
    with pytest.raises(RoutingError):
        bus.register_scope("design", ["command:[x]"])


def test_unregister_scope_drops_its_subscriptions(scoped: ScopedMessageBus) -> None:
    scoped.subscribe_scoped("design", "command:design:go", lambda m: "design")
    keep = scoped.subscribe("command:design:*", lambda m: "caller", priority=90)
    assert scoped.unregister_scope("design") is True
    assert scoped.unregister_scope("design") is False
    assert scoped.send(Command(command_name="design:go")) == "caller"
    assert scoped.unsubscribe(keep) is True


def test_subscribe_scoped_passes_priority_and_refuses_unknown_options(
    scoped: ScopedMessageBus,
) -> None:
    scoped.subscribe_scoped("design", "command:design:go", lambda m: "slow", priority=80)
    scoped.subscribe_scoped("design", "command:design:go", lambda m: "fast", priority=1)
    assert scoped.send_scoped("design", Command(command_name="design:go")) == "fast"
    with pytest.raises(TypeError, match="colour"):
        scoped.subscribe_scoped("design", "command:design:go", lambda m: None, colour="red")
