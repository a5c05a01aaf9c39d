"""The host services' background lanes with real threads and a real eventfd: the caller
(the supervisor's loop) never waits for a job, learns of answers through the fd, and one
lane's jobs run one at a time, in order, while other lanes go on."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator

import pytest

from spec_kit_runtime.supervisor.host_services.background import MAX_QUEUED, Background, Job
from spec_kit_runtime.supervisor.slots import Responder
from spec_kit_runtime.wire.codec import unpack_value

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def background() -> Iterator[Background]:
    lanes = Background(threads=2)
    yield lanes
    lanes.close(timeout=2.0)


def readable(background: Background, timeout: float) -> bool:
    return bool(select.select([background.fd], [], [], timeout)[0])


def collect(answers: list[tuple[bool, bytes]]) -> Responder:
    return lambda ok, body: answers.append((ok, body))


def test_the_loop_learns_of_answers_through_the_fd(background: Background) -> None:
    release = threading.Event()
    answers: list[tuple[bool, bytes]] = []
    assert background.submit("p", lambda: (release.wait(5), (True, b"done"))[1],
                             collect(answers))
    assert not readable(background, 0.05)  # the job blocks; the caller did not
    background.completed()
    assert answers == []
    release.set()
    assert readable(background, 5.0)
    background.completed()
    assert answers == [(True, b"done")]
    assert not readable(background, 0.0)


def test_one_lane_runs_in_order_while_others_go_on(background: Background) -> None:
    release, started = threading.Event(), []
    answers: list[tuple[bool, bytes]] = []

    def job(name: str, wait: bool) -> Job:
        def run() -> tuple[bool, bytes]:
            started.append(name)
            if wait:
                release.wait(5)
            return True, name.encode()
        return run

    background.submit("a", job("a1", True), collect(answers))
    background.submit("a", job("a2", False), collect(answers))
    background.submit("b", job("b1", False), collect(answers))
    assert readable(background, 5.0)
    background.completed()
    assert answers == [(True, b"b1")]  # lane b is not held up by lane a
    assert "a2" not in started  # lane a's second job waits for its first
    release.set()
    while len(answers) < 3:
        assert readable(background, 5.0)
        background.completed()
    assert answers[1:] == [(True, b"a1"), (True, b"a2")]


def test_a_full_lane_refuses_more(background: Background) -> None:
    release = threading.Event()
    for _ in range(MAX_QUEUED):
        assert background.submit("p", lambda: (release.wait(5), (True, b""))[1],
                                 lambda ok, body: None)
    assert not background.submit("p", lambda: (True, b""), lambda ok, body: None)
    assert background.submit("other", lambda: (True, b""), lambda ok, body: None)
    release.set()


def test_a_job_that_raises_is_answered_with_an_error(background: Background) -> None:
    answers: list[tuple[bool, bytes]] = []

    def broken() -> tuple[bool, bytes]:
        raise KeyError("a bug")

    background.submit("p", broken, collect(answers))
    assert readable(background, 5.0)
    background.completed()
    ((ok, body),) = answers
    assert not ok and unpack_value(body)["message"] == "internal error in a host service"


def test_close_answers_what_is_queued() -> None:
    background = Background(threads=1)
    answers: list[tuple[bool, bytes]] = []
    for index in range(3):
        background.submit("p", lambda i=index: (True, bytes([i])), collect(answers))
    background.close(timeout=5.0)
    assert answers == [(True, b"\x00"), (True, b"\x01"), (True, b"\x02")]
