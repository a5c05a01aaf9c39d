"""Owned namespaces and operator grants, by table (pure: no processes)."""

from __future__ import annotations

import pytest

from spec_kit_runtime.policy.grants import Grants, decide
from spec_kit_runtime.policy.namespaces import emitting_problem, handling_problem, owner_of


@pytest.mark.parametrize(("address", "owner"), [
    ("command:design:generate", "design"),
    ("request:audit:entries", "audit"),
    ("event:system:plugin_crashed", "system"),
    ("event:design", "design"),
    ("command:design", "design"),
    ("generator:hld", None),
    ("validator:python", None),
    ("hook:post_save", None),
    ("query:design", None),
    ("command:", None),
])
def test_owner_of(address: str, owner: str | None) -> None:
    assert owner_of(address) == owner


@pytest.mark.parametrize(("pattern", "whose"), [
    # its own namespace, and the shared kinds: allowed
    ("command:design:*", None),
    ("command:design", None),
    ("command:design:generate", None),
    ("request:design:*", None),
    ("generator:*", None),
    ("validator:py*", None),
    ("hook:post_save", None),
    ("event:other:*", None),  # subscribing to others' events is not taking them
    ("event:*", None),
    ("comm", None),  # no wildcard: it matches "comm" only, no command at all
    # another plugin's namespace, or patterns that could reach one: refused
    ("command:other:shutdown", "plugin 'other'"),
    ("command:other:*", "plugin 'other'"),
    ("command:designer:x", "plugin 'designer'"),  # a longer id is another plugin
    ("command:desig*", "other plugins"),
    ("command:*", "other plugins"),
    ("request:*", "other plugins"),
    ("request:core:*", "the host application"),
    ("*", "other plugins"),
    ("c*", "other plugins"),
    ("*:design:x", "other plugins"),  # also matches command:other:design:x
])
def test_handling(pattern: str, whose: str | None) -> None:
    problem = handling_problem("design", pattern)
    if whose is None:
        assert problem is None
    else:
        assert problem is not None
        assert f"plugin 'design' may not handle '{pattern}'" in problem
        assert f"belong to {whose}" in problem


@pytest.mark.parametrize(("address", "whose"), [
    ("event:design:done", None),
    ("event:design", None),
    ("command:other:run", None),  # sending commands is the scope's business
    ("generator:hld", None),
    ("event:other:done", "plugin 'other'"),
    ("event:designer:done", "plugin 'designer'"),
    ("event:system:plugin_crashed", "the supervisor"),
    ("event:project.initialized", "plugin 'project.initialized'"),
])
def test_emitting(address: str, whose: str | None) -> None:
    problem = emitting_problem("design", address)
    if whose is None:
        assert problem is None
    else:
        assert problem is not None and f"belong to {whose}" in problem


@pytest.mark.parametrize(("requested", "operator", "granted", "refused"), [
    ([], [], (), ()),
    # inside the default scope, or events only: granted without the operator
    (["command:design:*", "generator:hld", "request:core:x"], [],
     ("command:design:*", "generator:hld", "request:core:x"), ()),
    (["event:audit:*", "event:*"], [], ("event:audit:*", "event:*"), ()),
    # wider: refused unless the operator granted something that covers it
    (["*"], [], (), ("*",)),
    (["command:*"], [], (), ("command:*",)),
    (["request:*", "command:audit:*"], [], (), ("request:*", "command:audit:*")),
    (["command:audit:entries"], ["command:audit:*"], ("command:audit:entries",), ()),
    (["command:audit:*"], ["command:audit:entries"], (), ("command:audit:*",)),
    (["*"], ["*"], ("*",), ()),
    (["query:design"], [], (), ("query:design",)),
    # a grant not asked for adds nothing; repeats count once
    (["generator:x", "generator:x"], ["command:*"], ("generator:x",), ()),
])
def test_grants(requested: list[str], operator: list[str], granted: tuple[str, ...],
                refused: tuple[str, ...]) -> None:
    assert decide("design", requested, operator) == Grants(granted, refused)
