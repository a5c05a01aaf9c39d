"""The bytes of call bodies kept to put calls back (``PutBackBudget``), by table: a share per
sender and plugin called, a cap per plugin sender, and a total."""

from __future__ import annotations

import pytest

from spec_kit_runtime.policy.put_back_budget import Pair, PutBackBudget

Step = tuple[str, Pair, int, bool | None]
A, B = ("a", "x"), ("b", "x")  # plugins a and b calling x
HOST_X, HOST_Y, A_Y, A_Z = (None, "x"), (None, "y"), ("a", "y"), ("a", "z")


@pytest.mark.parametrize(("steps", "kept"), [
    ([("take", A, 60, True), ("take", A, 40, True)], {A: 100}),  # up to the share
    ([("take", A, 60, True), ("take", A, 41, False)], {A: 60}),  # refused whole
    ([("take", A, 101, False)], {A: 0}),  # one body larger than the share
    ([("take", A, 100, True), ("take", B, 100, True)], {A: 100, B: 100}),  # each its own
    ([("take", A, 100, True), ("take", A_Y, 100, True)], {A: 100, A_Y: 100}),  # per callee
    ([("take", HOST_X, 300, True), ("take", HOST_X, 1, False)], {HOST_X: 300}),  # the host's
    ([("take", HOST_X, 300, True), ("take", HOST_Y, 200, True), ("take", A, 1, False)],
     {HOST_X: 300, HOST_Y: 200, A: 0, None: 500}),  # the total (500) is reached
    ([("take", HOST_X, 300, True), ("take", HOST_Y, 200, True), ("give", HOST_X, 300, None),
      ("take", A, 100, True)], {A: 100, None: 300}),
    ([("take", A, 100, True), ("give", A, 100, None), ("take", A, 100, True)], {A: 100}),
    ([("take", A, 100, True), ("take", A_Y, 100, True), ("take", A_Z, 1, False)],
     {A: 100, A_Y: 100, A_Z: 0}),  # a's cap (200) over all it calls
    ([("take", A, 100, True), ("take", A_Y, 100, True), ("give", A, 50, None),
      ("take", A_Z, 50, True)], {A: 50, A_Z: 50}),
    ([("take", A, 100, True), ("take", A_Y, 100, True), ("take", B, 100, True)],
     {B: 100}),  # another sender's cap is its own
    ([("take", A, 0, True), ("give", A, 0, None)], {A: 0, None: 0}),  # empty bodies
    ([("give", A, 5, None)], {A: 0, None: 0}),  # never below nothing
])
def test_takes_within_the_share_and_the_total_and_gives_back(
        steps: list[Step], kept: dict[Pair | None, int]) -> None:
    budget = PutBackBudget(host=300, plugin=100, sender=200, total=500)
    for action, pair, size, expected in steps:
        if action == "take":
            assert budget.take(pair, size) is expected
        else:
            budget.give(pair, size)
    assert {pair: budget.kept(pair) for pair in kept} == kept
