"""The bytes of call bodies kept per plugin to put calls back (``PutBackBudget``), by table."""

from __future__ import annotations

import pytest

from spec_kit_runtime.policy.put_back_budget import PutBackBudget


@pytest.mark.parametrize(("steps", "kept"), [
    ([("take", "a", 60, True), ("take", "a", 40, True)], {"a": 100}),  # up to the limit
    ([("take", "a", 60, True), ("take", "a", 41, False)], {"a": 60}),  # refused whole
    ([("take", "a", 101, False)], {"a": 0}),  # one body larger than the budget
    ([("take", "a", 100, True), ("take", "b", 100, True)], {"a": 100, "b": 100}),  # each its own
    ([("take", "a", 100, True), ("give", "a", 100, None), ("take", "a", 100, True)],
     {"a": 100}),
    ([("take", "a", 0, True), ("give", "a", 0, None)], {"a": 0}),  # empty bodies
    ([("give", "a", 5, None)], {"a": 0}),  # never below nothing
])
def test_takes_within_the_limit_and_gives_back(steps: list[tuple[str, str, int, bool | None]],
                                               kept: dict[str, int]) -> None:
    budget = PutBackBudget(limit=100)
    for action, owner, size, expected in steps:
        if action == "take":
            assert budget.take(owner, size) is expected
        else:
            budget.give(owner, size)
    assert {owner: budget.kept(owner) for owner in kept} == kept
