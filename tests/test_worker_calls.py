"""Which call a worker is in, and when it counts as hung: a table of sends, answers and
deadlines (grace 0.5 s), and what each step says."""

from __future__ import annotations

from typing import Any

import pytest

from spec_kit_runtime.policy.worker_calls import Routed, WorkerCalls

GRACE = 0.5


def routed(deadline: float, timeout: float = 1.0) -> Routed:
    return Routed("command:w:x", timeout, deadline)


# Steps: ("send", owner, cid, now, deadline or None for a phase) -> None;
# ("answer", owner, cid, now) -> when to judge, or None; ("expire", owner, cid) -> likewise;
# ("hung", owner, now) -> the cid found hung, or None; ("forget", owner) -> None;
# ("oldest", owner) -> the cid the worker is in.
CASES: dict[str, list[tuple[Any, ...]]] = {
    "a call past its deadline and the grace": [
        ("send", "w", 1, 0.0, 1.0, None),
        ("expire", "w", 1, 1.5),
        ("hung", "w", 1.49, None),
        ("hung", "w", 1.5, 1),
        ("hung", "w", 9.0, None),  # found once: the kill is not repeated
    ],
    "answered within the grace": [
        ("send", "w", 1, 0.0, 1.0, None),
        ("expire", "w", 1, 1.5),
        ("answer", "w", 1, 1.2, None),  # a late reply still means the worker left the call
        ("hung", "w", 1.5, None),
        ("oldest", "w", None),
    ],
    "queued behind a legitimately long call": [
        ("send", "w", 1, 0.0, 10.0, None),
        ("send", "w", 2, 0.0, 1.0, None),
        ("expire", "w", 2, None),  # timed out in the queue: the worker is not in it
        ("hung", "w", 5.0, None),
        ("oldest", "w", 1),
        ("answer", "w", 1, 6.0, 6.5),  # now it is in call 2, overdue: grace from now
        ("hung", "w", 6.49, None),
        ("hung", "w", 6.5, 2),
    ],
    "queued, reached before its deadline": [
        ("send", "w", 1, 0.0, 10.0, None),
        ("send", "w", 2, 0.0, 8.0, None),
        ("answer", "w", 1, 5.0, 8.5),  # judged at its own deadline and the grace
        ("expire", "w", 2, 8.5),
        ("hung", "w", 8.5, 2),
    ],
    "a phase is never judged, and holds the calls behind it": [
        ("send", "w", 1, 0.0, None, None),
        ("send", "w", 2, 0.0, 1.0, None),
        ("expire", "w", 2, None),
        ("hung", "w", 100.0, None),
        ("answer", "w", 1, 3.0, 3.5),
        ("hung", "w", 3.5, 2),
    ],
    "a phase alone": [
        ("send", "w", 1, 0.0, None, None),
        ("hung", "w", 100.0, None),
    ],
    "nested calls are answered first; the outer call decides": [
        ("send", "w", 1, 0.0, 5.0, None),
        ("send", "w", 2, 0.5, 1.0, None),  # served while call 1 waits for its own send
        ("expire", "w", 2, None),
        ("answer", "w", 2, 2.0, None),
        ("oldest", "w", 1),
        ("expire", "w", 1, 5.5),
        ("hung", "w", 5.5, 1),
    ],
    "a worker that exits forgets its calls": [
        ("send", "w", 1, 0.0, 1.0, None),
        ("forget", "w"),
        ("expire", "w", 1, None),
        ("hung", "w", 9.0, None),
        ("answer", "w", 1, 9.0, None),
    ],
    "workers are judged apart": [
        ("send", "a", 1, 0.0, 1.0, None),
        ("send", "b", 2, 0.0, 1.0, None),
        ("answer", "b", 2, 0.5, None),
        ("expire", "a", 1, 1.5),
        ("hung", "b", 9.0, None),
        ("hung", "a", 9.0, 1),
    ],
    "an answer to a call it was never sent": [
        ("answer", "w", 42, 1.0, None),
        ("send", "w", 1, 0.0, 1.0, None),
        ("answer", "w", 42, 1.0, None),
        ("oldest", "w", 1),
    ],
    # A call's judged deadline may be later than its caller's (a plugin's call: router), so
    # its expiry may come while it waits, set no judge, and leave only this one.
    "reached after its caller's deadline, before the one it is judged by": [
        ("send", "w", 1, 0.0, 10.0, None),
        ("send", "w", 2, 0.1, 5.0, None),
        ("answer", "w", 1, 1.0, 5.5),
        ("hung", "w", 5.49, None),
        ("hung", "w", 5.5, 2),
    ],
    "answering the oldest when the next is not due yet": [
        ("send", "w", 1, 0.0, 1.0, None),
        ("send", "w", 2, 0.0, 3.0, None),
        ("answer", "w", 1, 0.8, 3.5),
        ("hung", "w", 3.49, None),
        ("expire", "w", 2, 3.5),
        ("hung", "w", 3.5, 2),
    ],
}


@pytest.mark.parametrize("steps", list(CASES.values()), ids=list(CASES))
def test_worker_calls(steps: list[tuple[Any, ...]]) -> None:
    calls = WorkerCalls(GRACE)
    for index, (op, owner, *args) in enumerate(steps):
        if op == "send":
            cid, now, deadline, expected = args
            got: object = calls.sent(owner, cid, now,
                                     None if deadline is None else routed(deadline))
        elif op == "answer":
            cid, now, expected = args
            got = calls.answered(owner, cid, now)
        elif op == "expire":
            cid, expected = args
            got = calls.expired(owner, cid)
        elif op == "hung":
            now, expected = args
            hung = calls.hung(owner, now)
            got = None if hung is None else hung.cid
        elif op == "forget":
            expected, got = None, calls.forget(owner)
        else:
            (expected,) = args
            got = calls.oldest(owner)
        assert got == expected, f"step {index}: {(op, owner, *args)}"


def test_the_cause_names_the_pattern_and_the_timeout() -> None:
    calls = WorkerCalls(GRACE)
    calls.sent("w", 1, 0.0, Routed("command:w:sleep", 0.25, 0.25))
    hung = calls.hung("w", 0.75)
    assert hung is not None and hung.owner == "w"
    assert hung.cause() == "call to command:w:sleep timed out after 0.25s"
