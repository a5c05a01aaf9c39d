"""The call progress page (``loop.call_progress``): what a worker writes there is what its
fork server reads, the worker keeps no fd of it, and a page it cannot map says that every
call was begun (so that no call is sent twice)."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

from spec_kit_worker.loop import call_progress
from spec_kit_worker.loop.call_progress import ALL_BEGUN, CallProgress


@pytest.fixture
def page() -> Iterator[int]:
    fd = call_progress.create()
    yield fd
    os.close(fd)


def links() -> set[str]:
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:
            continue
    return found


def test_a_new_page_says_nothing_was_begun(page: int) -> None:
    assert call_progress.read(page) == 0


def test_the_worker_writes_each_call_it_begins_and_keeps_no_fd(page: int) -> None:
    before = links()
    progress = CallProgress(os.dup(page))
    assert links() == before  # its own fd closed, and no duplicate kept for the mapping
    for cid in (1, 7, 2**40 + 3):
        progress.began(cid)
        assert call_progress.read(page) == cid


def test_a_page_that_cannot_be_mapped_says_every_call_was_begun(page: int) -> None:
    write_only = os.open(f"/proc/self/fd/{page}", os.O_WRONLY)  # mmap needs read access
    progress = CallProgress(write_only)
    progress.began(5)  # nowhere to write: the page keeps ALL_BEGUN
    assert call_progress.read(page) == ALL_BEGUN
    with pytest.raises(OSError):
        os.fstat(write_only)  # closed


def test_no_page_writes_nothing() -> None:
    CallProgress(None).began(3)  # a host without one (tests): no error


def test_a_spawn_without_a_page_is_still_a_spawn() -> None:
    """Out of fds, the fork server makes no page (the worker starts without one, and its
    death fails all its calls, as before pages): no error."""
    from spec_kit_worker.birth.forkserver import _new_page

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
    taken: list[int] = []
    try:
        with pytest.raises(OSError, match="Too many open files"):
            while True:  # every fd left
                taken.append(os.open("/dev/null", os.O_RDONLY))
        assert _new_page() is None
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
