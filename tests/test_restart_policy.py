"""The restart decision, by table: restart type x ending, then timing (OTP's model + backoff)."""

import pytest

from spec_kit_runtime.policy.restart import (
    Ending,
    GiveUp,
    Remove,
    Restart,
    RestartPolicy,
    RestartTracker,
    RestartType,
)

P, T, X = RestartType.PERMANENT, RestartType.TRANSIENT, RestartType.TEMPORARY
R, N = Restart, Remove  # restart; no restart (not a failure)

MATRIX = {
    # ending:              permanent  transient  temporary
    Ending.STOPPED:        (N,        N,         N),
    Ending.CLEAN:          (R,        N,         N),
    Ending.CRASHED:        (R,        R,         N),
    Ending.LIMIT:          (R,        R,         N),
    Ending.UNRESPONSIVE:   (R,        R,         N),
    Ending.START_FAILED:   (R,        R,         N),
}


@pytest.mark.parametrize("ending", list(Ending))
@pytest.mark.parametrize(("column", "restart"), [(0, P), (1, T), (2, X)])
def test_restart_type_by_ending(ending: Ending, column: int, restart: RestartType) -> None:
    decision = RestartTracker(RestartPolicy(restart=restart)).decide(ending, now=100.0)
    assert type(decision) is MATRIX[ending][column]


def test_first_restart_is_immediate_then_exponential_capped() -> None:
    tracker = RestartTracker(RestartPolicy(backoff_initial=0.5, backoff_factor=3.0,
                                           backoff_max=4.0, max_restarts=100, period=1000.0))
    delays = []
    for step in range(6):
        decision = tracker.decide(Ending.CRASHED, now=float(step))
        assert isinstance(decision, Restart)
        delays.append(decision.delay)
    assert delays == [0.0, 0.5, 1.5, 4.0, 4.0, 4.0]


def test_backoff_resets_after_a_stable_run() -> None:
    tracker = RestartTracker(RestartPolicy(stable_after=10.0, max_restarts=100))
    tracker.decide(Ending.CRASHED, 0.0)
    tracker.started(0.0)
    assert tracker.decide(Ending.CRASHED, 1.0) == Restart(0.1)  # unstable: backing off
    tracker.started(1.0)
    assert tracker.decide(Ending.CRASHED, 11.0) == Restart(0.0)  # up 10 s: immediate again


G = GiveUp


@pytest.mark.parametrize(("times", "expected"), [
    ([0, 1, 2], [R, R, G]),  # max_restarts=2: the third ending within 10 s is one too many
    ([0, 10, 20, 30], [R, R, R, R]),  # each restart has left the window before the next
    ([0, 1, 11, 12, 13], [R, R, R, R, G]),  # the window slides: 0 and 1 expire by t=11
])
def test_intensity_window(times: list[float], expected: list[type]) -> None:
    tracker = RestartTracker(RestartPolicy(max_restarts=2, period=10.0))
    assert [type(tracker.decide(Ending.CRASHED, float(t))) for t in times] == expected


def test_give_up_says_why() -> None:
    tracker = RestartTracker(RestartPolicy(max_restarts=1, period=5.0))
    tracker.decide(Ending.CRASHED, 0.0)
    decision = tracker.decide(Ending.CRASHED, 1.0)
    assert isinstance(decision, GiveUp)
    assert "restart 2 within 5s" in decision.why and "max_restarts 1" in decision.why
