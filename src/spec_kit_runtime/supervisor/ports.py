"""The narrow ports the supervisor's parts talk through, instead of the Supervisor itself.

Each part is handed only what it uses: the slot table (``slots.SlotTable``), a clock with
timers, an outbox to workers and clients, the system-event emitter, the router as the
lifecycle calls into workers through it, and the worker table that spawns them. The loop
(``loop.Supervisor``) builds the real ones and wires the parts together; tests hand the
parts fakes and run them without processes or sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from spec_kit_runtime.errors import RuntimeFailure
    from spec_kit_runtime.policy.timers import Timer
    from spec_kit_runtime.wire.protocol import Record

    from .slots import PluginSlot, Responder
    from .worker_process import WorkerProcess


class Sent(Enum):
    """What became of a record handed to the outbox."""

    OK = "sent"
    GONE = "the peer is gone"  # its connection is closed (or was never there)
    FULL = "the peer's queue is full"  # it is there but not reading: this record is lost
    TOO_BIG = "the record is too big to send"
    NO_WORKER = "the plugin has no connected worker"


class Clock(Protocol):
    """The loop's time and its timers."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def at(self, when: float, action: Callable[[], None]) -> Timer:
        """Run ``action`` on the loop once ``now()`` reaches ``when``."""
        ...


class Outbox(Protocol):
    """Sends records to a plugin's worker or to a client connection, never blocking."""

    def to_worker(self, slot: PluginSlot, record: Record) -> Sent:
        ...

    def to_client(self, identity: bytes, record: Record) -> Sent:
        ...


Emit = Callable[[str, dict[str, object]], None]
"""Publishes ``event:system:{name}`` with its data to the subscribers of it."""


class WorkerCalls(Protocol):
    """The router, as the lifecycle uses it to run phases in a worker."""

    def call(self, owner: str, make: Callable[[int], Record], timeout: float, what: str,
             respond: Responder) -> int:
        """Send the record ``make(cid)``; ``respond`` gets its Reply or an error at the
        deadline. Returns the call's id."""
        ...

    def postpone(self, cid: int, timeout: float) -> None:
        """Give call ``cid``, if still in flight, ``timeout`` seconds from now."""
        ...

    def owner_gone(self, owner: str, error: RuntimeFailure, began: int | None = None) -> None:
        """``owner``'s worker died: answer the calls in flight to it with ``error``, but
        those it had not begun (cid after ``began``), which may wait for its replacement."""
        ...

    def clear_routes(self, owner: str) -> None:
        """Forget every handler ``owner`` subscribed."""
        ...

    def settled(self, owner: str) -> None:
        """An operation on plugin ``owner`` ended: the calls waiting for it to be ready go
        to it, or fail (``ready_waits``)."""
        ...


class Spawner(Protocol):
    """The worker table, as the lifecycle asks it for workers."""

    def spawn(self, slot: PluginSlot, started: Callable[[WorkerProcess], None],
              failed: Callable[[OSError], None]) -> int:
        """Ask for the worker of ``slot`` without waiting: ``started`` (or ``failed``) is
        called from the loop when it is there. Returns the spawn's tag, for ``abandon``;
        OSError if it cannot even be asked."""
        ...

    def abandon(self, tag: int) -> None:
        """Give up on a spawn not answered yet (its worker, if one comes, is killed)."""
        ...
