"""Why a worker ended, in words an operator can act on (pure)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum


class ExitKind(StrEnum):
    """Why the supervisor killed a worker, as the restart policy sees it (each is an
    ``Ending`` of the same value); a kill of no kind ends as a crash."""

    LIMIT = "limit"  # a resource limit exceeded
    UNRESPONSIVE = "unresponsive"  # heartbeats missed, or still in a call long past its deadline


@dataclass(frozen=True)
class ExitReason:
    """How a worker process ended; ``expected`` when the supervisor asked it to stop."""

    returncode: int
    expected: bool = False
    cause: str | None = None  # why the supervisor killed it, e.g. "unresponsive: ..."
    cause_kind: ExitKind | None = None  # None: no kind (the restart policy sees a crash)
    # the last call it began, as its own page says (0: none; None: not known): the calls
    # sent to it after that one never reached a handler (``loop.call_progress``)
    began: int | None = None

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def clean(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """e.g. "exited with code 3", "killed by SIGSEGV", "unresponsive: … (killed by SIGKILL)"."""
        name = self.signal_name
        how = f"killed by {name}" if name else f"exited with code {self.returncode}"
        return f"{self.cause} ({how})" if self.cause else how
