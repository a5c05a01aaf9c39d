"""Message figures by table: counts, in flight, nearest-rank percentiles over a window."""

import pytest

from spec_kit_runtime.policy.call_stats import CallFigures, CallStats


@pytest.mark.parametrize(("latencies_ms", "p50", "p99"), [
    ([], None, None),
    ([5.0], 5.0, 5.0),
    ([1.0, 2.0, 3.0, 4.0], 2.0, 4.0),
    ([float(n) for n in range(1, 101)], 50.0, 99.0),
])
def test_percentiles(latencies_ms: list[float], p50: float | None, p99: float | None) -> None:
    stats = CallStats()
    for ms in latencies_ms:
        stats.started()
        stats.finished(ms / 1000, ok=True)
    figures = stats.figures()
    assert (figures.p50_ms, figures.p99_ms) == (p50, p99)


def test_counts_errors_in_flight_and_events() -> None:
    stats = CallStats()
    for _ in range(3):
        stats.started()
    stats.finished(0.001, ok=True)
    stats.finished(0.002, ok=False)
    stats.notified()
    assert stats.figures() == CallFigures(handled=3, errors=1, in_flight=1,
                                          p50_ms=1.0, p99_ms=2.0)


def test_only_the_window_counts_for_latency() -> None:
    stats = CallStats(window=2)
    for seconds in (10.0, 0.001, 0.001):
        stats.started()
        stats.finished(seconds, ok=True)
    assert stats.figures().p99_ms == 1.0 and stats.figures().handled == 3
