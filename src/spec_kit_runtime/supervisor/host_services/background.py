"""Work the supervisor's loop must not wait for (host service file I/O), on a few threads.

The loop stays the only thread that touches sockets and slots: a job runs on a pool
thread and produces its answer, ``(ok, body)``; the loop picks answers up when the
pool's eventfd, registered in its poll like every other fd, says one is ready, and only
then hands them on. Jobs of one lane (one plugin) run one at a time and in order, so a
plugin's writes and reads never race each other and one plugin cannot take every thread;
a lane holds at most MAX_QUEUED jobs, more are refused at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from spec_kit_runtime.errors import RuntimeFailure
from spec_kit_runtime.supervisor.slots import Responder
from spec_kit_runtime.wire.codec import pack_error

log = logging.getLogger(__name__)
THREADS = 4
MAX_QUEUED = 32
Job = Callable[[], tuple[bool, bytes]]


class Background:
    """Lanes of jobs on a small thread pool; ``fd`` is readable when answers wait."""

    def __init__(self, threads: int = THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="host-services")
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._lanes: dict[str, deque[tuple[Job, Responder]]] = {}
        self._answers: deque[tuple[str, Responder, bool, bytes]] = deque()  # thread-safe ends

    def submit(self, lane: str, job: Job, respond: Responder) -> bool:
        """Run ``job`` after the lane's earlier jobs; ``respond`` gets its answer on the loop.
        False (and nothing queued) when the lane is full."""
        queue = self._lanes.setdefault(lane, deque())
        if len(queue) >= MAX_QUEUED:
            return False
        queue.append((job, respond))
        if len(queue) == 1:
            self._start(lane, job, respond)
        return True

    def completed(self) -> None:
        """On the loop, when ``fd`` is readable: hand out the answers, start what is next."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.fd)
        while self._answers:
            lane, respond, ok, body = self._answers.popleft()
            queue = self._lanes[lane]
            queue.popleft()
            if queue:
                self._start(lane, *queue[0])
            else:
                del self._lanes[lane]
            try:
                respond(ok, body)
            except Exception:  # a bug of ours: the other answers still go out
                log.exception("internal error while answering a host service call")

    def close(self, timeout: float) -> None:
        """Finish the queued jobs (answering them) for up to ``timeout``, then stop."""
        deadline = time.monotonic() + timeout
        while self._lanes and (left := deadline - time.monotonic()) > 0:
            if select.select([self.fd], [], [], left)[0]:
                self.completed()
        if self._lanes:
            log.warning("host services: %d plugins' calls unfinished at exit", len(self._lanes))
        self._pool.shutdown(wait=True, cancel_futures=True)
        os.close(self.fd)

    def _start(self, lane: str, job: Job, respond: Responder) -> None:
        def run() -> None:
            try:
                ok, body = job()
            except Exception:  # a bug of ours: the caller still gets an answer
                log.exception("internal error in a host service call")
                ok, body = False, pack_error(RuntimeFailure("internal error in a host service"))
            self._answers.append((lane, respond, ok, body))
            os.eventfd_write(self.fd, 1)

        self._pool.submit(run)
