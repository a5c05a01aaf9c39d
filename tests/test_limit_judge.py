"""The limit verdict by table: memory and processes per sample, CPU over a whole window."""

import pytest

from spec_kit_runtime.policy.limit_judge import LimitJudge, Usage, WatchedLimits

LIMITS = WatchedLimits(memory_mb=256, cpu_percent=80.0, cpu_window=3.0, max_processes=4)


@pytest.mark.parametrize(("usage", "verdict"), [
    (Usage(0, 100, 10, 1), None),
    (Usage(0, 301, 10, 1), "memory limit 256 MiB exceeded: 301 MiB"),
    (Usage(0, 100, 10, 5), "process limit 4 exceeded: 5 processes"),
    (Usage(0, 256, 10, 4), None),  # at the limit is fine
])
def test_memory_and_processes_per_sample(usage: Usage, verdict: str | None) -> None:
    assert LimitJudge(LIMITS).observe(usage) == verdict


@pytest.mark.parametrize(("cpu", "verdict"), [
    ([100, 100, 100, 100], "cpu limit 80% exceeded: 100% for 3s"),  # a whole window over
    ([100, 100, 100], None),  # not yet a whole window
    ([100, 100, 50, 100], None),  # one dip below: not sustained
    ([0, 90, 95, 85], "cpu limit 80% exceeded: 90% for 3s"),  # the first sample is the start
])
def test_cpu_must_stay_over_for_a_whole_window(cpu: list[float], verdict: str | None) -> None:
    judge = LimitJudge(LIMITS)
    verdicts = [judge.observe(Usage(float(t), 10, c, 1)) for t, c in enumerate(cpu)]
    assert verdicts[:-1] == [None] * (len(cpu) - 1)
    assert verdicts[-1] == verdict


def test_no_limits_no_verdicts() -> None:
    judge = LimitJudge(WatchedLimits(None, None, 10.0, None))
    assert judge.observe(Usage(0, 10_000, 400, 1000)) is None


def test_cpu_window_with_samples_that_do_not_align() -> None:
    judge = LimitJudge(WatchedLimits(None, 50.0, 1.0, None))
    times = [0.0, 0.13, 0.29, 0.41, 0.58, 0.66, 0.87, 0.95, 1.08]
    verdicts = [judge.observe(Usage(t, 10, 99.0, 1)) for t in times]
    assert verdicts[:-1] == [None] * (len(times) - 1)  # not a whole second yet
    assert verdicts[-1] == "cpu limit 50% exceeded: 99% for 1s"
