"""Deadlines of calls in flight: a table of operations and what comes due."""

from __future__ import annotations

import pytest

from spec_kit_runtime.policy.deadlines import Deadlines


@pytest.mark.parametrize(("steps", "now", "due", "left"), [
    ([("add", 1, 5.0)], 4.9, [], 5.0),
    ([("add", 1, 5.0)], 5.0, [1], None),
    ([("add", 1, 5.0), ("remove", 1)], 9.0, [], None),
    ([("add", 1, 5.0), ("add", 2, 3.0), ("add", 3, 7.0)], 6.0, [2, 1], 7.0),
    ([("add", 1, 5.0), ("remove", 1), ("add", 1, 8.0)], 6.0, [], 8.0),  # re-added later
    ([("add", 1, 5.0), ("add", 1, 2.0)], 3.0, [1], None),  # moved earlier
    ([("remove", 42)], 1.0, [], None),
])
def test_deadlines(steps: list[tuple[object, ...]], now: float, due: list[int],
                   left: float | None) -> None:
    deadlines = Deadlines()
    for op, key, *when in steps:
        assert isinstance(key, int)
        if op == "add":
            deadlines.add(key, float(when[0]))  # type: ignore[arg-type]
        else:
            deadlines.remove(key)
    assert deadlines.due(now) == due
    assert deadlines.next_due() == left


def test_answered_calls_do_not_pile_up() -> None:
    deadlines = Deadlines()
    deadlines.add(0, 1000.0)  # one slow call holds the front of the heap
    for key in range(1, 100_000):
        deadlines.add(key, 30.0 + key)
        deadlines.remove(key)
    assert len(deadlines) == 1
    assert len(deadlines._heap) < 3000  # rebuilt from the live entries as it went
    assert deadlines.next_due() == 1000.0
    assert deadlines.due(2000.0) == [0]


@pytest.mark.parametrize(("deadline", "answered_at", "in_time"), [
    (5.0, 4.999, True),
    (5.0, 5.0, False),  # at the deadline: late, as ``due(5.0)`` would hand it back
    (5.0, 5.001, False),  # read in the turn of the loop its deadline came: still late
    (None, 1.0, False),  # unknown (expired already, or never added): never in time
])
def test_an_answer_at_or_after_its_deadline_is_late(deadline: float | None, answered_at: float,
                                                    in_time: bool) -> None:
    deadlines = Deadlines()
    if deadline is not None:
        deadlines.add(7, deadline)
    assert deadlines.settle(7, answered_at) is in_time
    assert len(deadlines) == 0 and deadlines.due(1e9) == []  # settled either way
