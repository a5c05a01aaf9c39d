"""Whether and when to restart a worker that ended: pure arithmetic, the clock passed in.

The semantics are OTP's supervisor: a restart *type* per plugin (permanent, transient,
temporary) crossed with how the worker *ended*, and an *intensity* limit (at most
``max_restarts`` within ``period`` seconds; one more and the plugin is failed). On top of
OTP, restarts back off exponentially — the first is immediate — and the backoff resets
once a worker has stayed up ``stable_after`` seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from typing import Any

from .exits import ExitKind


class RestartType(Enum):
    PERMANENT = "permanent"  # always restarted, unless stopped on purpose
    TRANSIENT = "transient"  # restarted only after an abnormal end
    TEMPORARY = "temporary"  # never restarted


class Strategy(StrEnum):
    """Who restarts with a restarted plugin (``runtime.strategy``)."""

    ONE_FOR_ONE = "one_for_one"  # itself only
    REST_FOR_ONE = "rest_for_one"  # and then the plugins depending on it, in order


class Ending(Enum):
    """How a worker ended, as far as restarting is concerned: a kill of an ``ExitKind``
    is the Ending of the same value (``Ending(kind)``)."""

    STOPPED = "stopped"  # the supervisor or a user asked it to stop
    CLEAN = "clean"  # it exited with code 0 on its own
    CRASHED = "crashed"  # non-zero exit code or a signal
    LIMIT = ExitKind.LIMIT.value  # killed for exceeding a resource limit
    UNRESPONSIVE = ExitKind.UNRESPONSIVE.value  # killed as unresponsive (see ExitKind)
    START_FAILED = "start_failed"  # import error, handshake timeout, initialize/activate raised

    @property
    def abnormal(self) -> bool:
        return self not in (Ending.STOPPED, Ending.CLEAN)


@dataclass(frozen=True)
class RestartPolicy:
    """A plugin's restart knobs (config defaults, overridable per plugin)."""

    restart: RestartType = RestartType.PERMANENT
    max_restarts: int = 5
    period: float = 60.0
    backoff_initial: float = 0.1
    backoff_factor: float = 2.0
    backoff_max: float = 30.0
    stable_after: float = 30.0


@dataclass(frozen=True)
class Restart:
    """Restart after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class Remove:
    """Do not restart; this is not a failure."""

    why: str


@dataclass(frozen=True)
class GiveUp:
    """Do not restart; the plugin is failed."""

    why: str


Decision = Restart | Remove | GiveUp


class RestartTracker:
    """One plugin's restart history; ``decide`` is called each time its worker ends."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._restarts: deque[float] = deque()
        self._consecutive = 0
        self._started_at: float | None = None

    @property
    def restarts_in_window(self) -> int:
        return len(self._restarts)

    def started(self, now: float) -> None:
        """The worker came up (handshake done)."""
        self._started_at = now

    def decide(self, ending: Ending, now: float) -> Decision:
        """What to do about a worker that ended as ``ending`` at ``now``."""
        policy = self.policy
        if ending is Ending.STOPPED:
            return Remove("stopped on purpose")
        if policy.restart is RestartType.TEMPORARY:
            return Remove("temporary plugins are not restarted")
        if policy.restart is RestartType.TRANSIENT and not ending.abnormal:
            return Remove("transient plugin ended normally")
        if self._started_at is not None and now - self._started_at >= policy.stable_after:
            self._consecutive = 0  # it was stable: start the backoff over
        self._started_at = None
        while self._restarts and self._restarts[0] <= now - policy.period:
            self._restarts.popleft()
        if len(self._restarts) >= policy.max_restarts:
            return GiveUp(f"it would be restart {len(self._restarts) + 1} within "
                          f"{policy.period:g}s (max_restarts {policy.max_restarts})")
        self._restarts.append(now)
        delay = 0.0 if self._consecutive == 0 else min(
            policy.backoff_initial * policy.backoff_factor ** (self._consecutive - 1),
            policy.backoff_max,
        )
        self._consecutive += 1
        return Restart(delay)


_NUMBERS = ("period", "backoff_initial", "backoff_factor", "backoff_max", "stable_after")


def policy_from_data(data: Mapping[str, Any], base: RestartPolicy) -> RestartPolicy:
    """``base`` with the settings in ``data`` applied; ValueError says what is wrong.

    Keys: ``type`` (permanent, transient, temporary), ``max_restarts`` and the numbers
    ``period``, ``backoff_initial``, ``backoff_factor`` (at least 1), ``backoff_max``,
    ``stable_after``. Shared by the config file and manifests, which word the error.
    """
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "type":
            try:
                values["restart"] = RestartType(value)
            except ValueError:
                raise ValueError("type must be permanent, transient or temporary") from None
        elif key == "max_restarts":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("max_restarts must be an integer >= 0")
            values[key] = value
        elif key in _NUMBERS:
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value) or value < 0):  # NaN stalled every timer
                raise ValueError(f"{key} must be a finite number >= 0")
            values[key] = float(value)
        else:
            raise ValueError(f"unknown key '{key}'")
    policy = replace(base, **values)
    if policy.backoff_factor < 1:
        raise ValueError("backoff_factor must be at least 1")
    return policy
