"""Tables for the pure routing logic: patterns, scopes, addresses, the routing table."""

import fnmatch
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spec_kit_contracts import Command, Event, Message, MessageType, Query, Request

from spec_kit_runtime.errors import RoutingError, ScopeError
from spec_kit_runtime.policy.patterns import address_problem, covers, matches, pattern_problem
from spec_kit_runtime.policy.routing_table import RoutingTable
from spec_kit_runtime.policy.scopes import Scope
from spec_kit_runtime.wire.addressing import Delivery, address_of, delivery_of


@pytest.mark.parametrize(("address", "pattern", "expected"), [
    ("command:design:generate", "command:design:*", True),
    ("command:design:generate", "command:design:generate", True),
    ("command:design:generate:x", "command:design:*", True),  # * spans ':'
    ("command:designer:x", "command:design:*", False),
    ("command:design", "command:design:*", False),
    ("event:system:started", "event:*:started", True),
    ("hook:post_save", "*", True),
    ("a.b", "a?b", False),  # no other glob syntax: '?' is not a wildcard... and not allowed
])
def test_matches(address: str, pattern: str, expected: bool) -> None:
    assert matches(address, pattern) is expected


@pytest.mark.parametrize(("scope", "pattern", "expected"), [
    ("command:design:*", "command:design:generate", True),
    ("command:design:*", "command:design:*", True),
    ("command:design:*", "command:*", False),
    ("event:system:*", "event:*", False),
    ("event:*", "event:system:*", True),
    ("*", "a*b*c", True),
    ("a*c", "a*b*c", True),
    ("a*b", "a*", False),
    ("generator:*", "generator:hld", True),
    ("request:core:*", "request:cor*", False),
])
def test_covers(scope: str, pattern: str, expected: bool) -> None:
    assert covers(scope, pattern) is expected


@pytest.mark.parametrize("value", ["", "a b", "a?b", "x[1]", 3, None, "é", "a" * 300])
def test_bad_patterns_and_addresses(value: object) -> None:
    assert pattern_problem(value) is not None
    assert address_problem(value) is not None


def test_star_is_a_pattern_not_an_address() -> None:
    assert pattern_problem("command:*") is None
    assert address_problem("command:*") is not None


@pytest.mark.parametrize(("message", "address", "delivery"), [
    (Command(command_name="design:generate"), "command:design:generate", Delivery.ONE),
    (Event(event_name="design:done"), "event:design:done", Delivery.FAN_OUT),
    (Request(method="design:get"), "request:design:get", Delivery.ONE),
    (Request(method="validator:python"), "validator:python", Delivery.ONE),
    (Request(method="generator:hld"), "generator:hld", Delivery.ONE),
    (Request(method="hook:post_save"), "hook:post_save", Delivery.ALL_IN_ORDER),
    (Query(query_type="x", target="audit"), "query:audit", Delivery.ONE),
])
def test_address_of(message: Message, address: str, delivery: Delivery) -> None:
    assert address_of(message) == address
    assert delivery_of(address) is delivery


@pytest.mark.parametrize("message", [
    Message(type=MessageType.QUERY),  # no target
    Command(command_name=""),
    Command(command_name="a b"),
    Request(method="x*"),
])
def test_unroutable_messages(message: Message) -> None:
    with pytest.raises(RoutingError):
        address_of(message)


@pytest.mark.parametrize(("address", "allowed"), [
    ("command:design:generate", True),
    ("event:design:done", True),
    ("request:core:config", True),
    ("validator:python", True),
    ("hook:post_save", True),
    ("event:system:started", False),  # only the supervisor emits it
    ("command:audit:x", False),
    ("request:audit:entries", False),
    ("event:audit:x", False),  # subscribing is granted, emitting is audit's alone
])
def test_scope_send(address: str, allowed: bool) -> None:
    scope = Scope("design", ["event:audit:*"])
    assert scope.may_send(address) is allowed
    assert scope.may_send(address) is allowed  # cached answer agrees
    if not allowed:
        with pytest.raises(ScopeError, match="design"):
            scope.check_send(address)


@pytest.mark.parametrize(("pattern", "allowed"), [
    ("event:system:*", True),  # may listen
    ("command:design:*", True),
    ("command:*", False),
    ("*", False),
    ("event:*", False),
    ("hook:*", True),
])
def test_scope_subscribe(pattern: str, allowed: bool) -> None:
    assert Scope("design").may_subscribe(pattern) is allowed


def test_routing_table_orders_by_priority_then_registration() -> None:
    table = RoutingTable()
    table.add("b", 1, "hook:save", 50, "hook")
    table.add("a", 1, "hook:*", 10, "hook")
    table.add("c", 1, "hook:save", 50, "hook")
    assert [r.owner for r in table.routes("hook:save")] == ["a", "b", "c"]
    table.remove("a", 1)
    assert [r.owner for r in table.routes("hook:save")] == ["b", "c"]
    table.clear_owner("b")
    assert [r.owner for r in table.routes("hook:save")] == ["c"]
    assert table.routes("hook:other") == ()
    assert table.patterns_of("c") == ["hook:save"]


@given(st.text(alphabet="ab:*", max_size=12), st.text(alphabet="ab:", max_size=12))
def test_matches_agrees_with_fnmatch_on_star_patterns(pattern: str, address: str) -> None:
    assert matches(address, pattern) is fnmatch.fnmatchcase(address, pattern)


def test_hostile_pattern_does_not_backtrack_exponentially() -> None:
    pattern = "validator:" + "*a" * 40 + "*b"
    assert covers("validator:*", pattern)  # a plugin may subscribe to it
    assert not matches("validator:" + "a" * 240, pattern)  # and routing still answers


@given(st.text("ab:*", max_size=10), st.text("ab:", max_size=10))
def test_matches_agrees_with_a_regular_expression(pattern: str, address: str) -> None:
    """``matches`` finds literal runs with str.find (no backtracking, see its docstring):
    it must still say what ``*`` as ``.*`` says."""
    expected = re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), address, re.S)
    assert matches(address, pattern) is (expected is not None)
