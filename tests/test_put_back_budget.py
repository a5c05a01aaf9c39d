"""The bytes of call bodies kept per sender to put calls back (``PutBackBudget``), by table."""

from __future__ import annotations

import pytest

from spec_kit_runtime.policy.put_back_budget import PutBackBudget

Step = tuple[str, str | None, int, bool | None]


@pytest.mark.parametrize(("steps", "kept"), [
    ([("take", "a", 60, True), ("take", "a", 40, True)], {"a": 100}),  # up to the limit
    ([("take", "a", 60, True), ("take", "a", 41, False)], {"a": 60}),  # refused whole
    ([("take", "a", 101, False)], {"a": 0}),  # one body larger than the budget
    ([("take", "a", 100, True), ("take", "b", 100, True)], {"a": 100, "b": 100}),  # each its own
    ([("take", None, 300, True), ("take", None, 1, False)], {None: 300}),  # the host's, larger
    ([("take", "a", 100, True), ("take", None, 300, True)], {"a": 100, None: 300}),
    ([("take", "a", 100, True), ("give", "a", 100, None), ("take", "a", 100, True)],
     {"a": 100}),
    ([("take", "a", 0, True), ("give", "a", 0, None)], {"a": 0}),  # empty bodies
    ([("give", "a", 5, None)], {"a": 0}),  # never below nothing
])
def test_takes_within_the_senders_limit_and_gives_back(steps: list[Step],
                                                      kept: dict[str | None, int]) -> None:
    budget = PutBackBudget(host=300, plugin=100)
    for action, sender, size, expected in steps:
        if action == "take":
            assert budget.take(sender, size) is expected
        else:
            budget.give(sender, size)
    assert {sender: budget.kept(sender) for sender in kept} == kept
