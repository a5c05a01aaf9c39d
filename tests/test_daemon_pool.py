"""The caller handlers' threads: daemons that serve on whatever a job raises."""

from __future__ import annotations

import threading

import pytest

from spec_kit_runtime.client.daemon_pool import DaemonPool

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("raised", [ValueError("boom"), SystemExit(3), KeyboardInterrupt()])
def test_a_job_that_raises_leaves_its_thread_serving(raised: BaseException) -> None:
    """A handler calling sys.exit() once took its thread for good (four such, no pool)."""
    pool = DaemonPool(1, "test-pool")
    ran = threading.Event()

    def bad() -> None:
        raise raised

    try:
        pool.submit(bad)
        pool.submit(ran.set)
        assert ran.wait(5.0)
    finally:
        pool.shutdown()


def test_the_threads_are_daemons_and_end_at_shutdown() -> None:
    pool = DaemonPool(3, "test-pool-daemons")
    threads = [t for t in threading.enumerate() if t.name.startswith("test-pool-daemons")]
    assert len(threads) == 3 and all(t.daemon for t in threads)
    pool.shutdown()
    for thread in threads:
        thread.join(5.0)
    assert not any(t.is_alive() for t in threads)
