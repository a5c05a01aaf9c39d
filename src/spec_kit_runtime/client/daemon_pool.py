"""A few daemon threads running submitted jobs, for handlers living in a caller's process.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so
one host handler that never returns would keep the caller's process alive after its work
is done: a CLI command that never ends. These threads are daemons: the process exits when
its main thread does, whatever a handler is doing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
_STOP = None


class DaemonPool:
    """``workers`` daemon threads taking jobs in order from one queue."""

    def __init__(self, workers: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True)
                         for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on one of the threads, when one is free."""
        self._jobs.put(job)

    def shutdown(self) -> None:
        """Let each thread end after the job it is running (jobs still queued are dropped)."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._jobs.put(_STOP)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not _STOP:
            try:
                job()
            except BaseException:  # SystemExit included: the thread must serve on
                log.exception("a caller handler job failed")
