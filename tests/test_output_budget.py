"""The output budget by table: a token bucket over whole lines, with a fake clock."""

import pytest

from spec_kit_runtime.policy.output_budget import OutputBudget, OutputFigures


@pytest.mark.parametrize(("lines", "logged"), [
    ([(0.0, 100), (0.0, 100), (0.0, 100)], [True, True, False]),  # the burst is 250
    ([(0.0, 250), (0.0, 1)], [True, False]),  # the whole burst at once, then nothing
    ([(0.0, 250), (1.0, 100), (1.0, 1)], [True, True, False]),  # 100 bytes a second back
    ([(0.0, 250), (10.0, 250), (10.0, 1)], [True, True, False]),  # saving up stops at burst
    ([(0.0, 300)], [False]),  # a line longer than the burst is never logged
])
def test_lines_within_the_budget_are_logged(lines: list[tuple[float, int]],
                                             logged: list[bool]) -> None:
    budget = OutputBudget(rate=100.0, burst=250.0)
    assert [budget.take(size, at) for at, size in lines] == logged
    dropped = [size for (_, size), ok in zip(lines, logged, strict=True) if not ok]
    assert budget.figures() == OutputFigures(
        logged_bytes=sum(size for _, size in lines) - sum(dropped),
        dropped_bytes=sum(dropped), dropped_lines=len(dropped))


def test_no_rate_means_no_limit() -> None:
    budget = OutputBudget(rate=None, burst=0.0)
    assert all(budget.take(1 << 20, 0.0) for _ in range(100))
    assert budget.figures().dropped_bytes == 0


def test_exhausted_until_it_refills() -> None:
    budget = OutputBudget(rate=100.0, burst=100.0)
    assert not budget.exhausted(0.0)
    assert budget.take(100, 0.0)
    assert budget.exhausted(0.005)  # half a byte back
    assert not budget.exhausted(0.02)  # two bytes back


def test_overhead_is_charged_but_not_counted() -> None:
    budget = OutputBudget(rate=1.0, burst=130.0)
    assert budget.take(1, 0.0, overhead=64) and budget.take(1, 0.0, overhead=64)
    assert not budget.take(1, 0.0, overhead=64)  # 130 tokens: two empty lines, not three
    assert budget.figures() == OutputFigures(logged_bytes=2, dropped_bytes=1, dropped_lines=1)
