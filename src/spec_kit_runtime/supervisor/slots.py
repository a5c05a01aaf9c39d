"""What the supervisor knows of each plugin (its manifest, scope, worker and state), and
the table of them that the supervisor's parts share."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spec_kit_runtime.errors import PluginStateError
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.policy.call_stats import CallStats
from spec_kit_runtime.policy.grants import Grants
from spec_kit_runtime.policy.limit_judge import Usage
from spec_kit_runtime.policy.limits import Limits
from spec_kit_runtime.policy.output_budget import OutputBudget
from spec_kit_runtime.policy.restart import RestartTracker
from spec_kit_runtime.policy.scopes import Scope
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.policy.timers import Timer

from .worker_process import WorkerProcess

if TYPE_CHECKING:
    from spec_kit_runtime.wire.status import PluginReport

Responder = Callable[[bool, bytes], None]
"""Where an answer goes: ``(ok, body)``, body being the msgpack result or error data."""


@dataclass
class PluginSlot:
    """One plugin under supervision."""

    info: PluginInfo
    config: dict[str, Any]
    scope: Scope
    tracker: RestartTracker
    limits: Limits
    status: str = PluginState.UNLOADED  # as its worker last reported it, or the supervisor's
    target: PluginState | None = None  # the state a caller asked for, restored after a crash
    restarts: int = 0
    restart_timer: Timer | None = None
    usage: Usage | None = None  # the watchdog's latest sample of the worker's tree
    output: OutputBudget = field(init=False)  # captured output logged and dropped, all workers
    calls: CallStats = field(default_factory=CallStats)  # messages to it, all workers
    worker: WorkerProcess | None = None
    identity: bytes | None = None  # ZeroMQ routing id, once the worker proved its secret
    secret: bytes | None = None  # expected in the worker's Hello; single use
    started_at: float | None = None
    last_exit: str | None = None
    last_exit_at: float | None = None
    last_error: str | None = None
    # lifecycle operations waiting for the one in progress: (name, steps, responder)
    ops: deque[tuple[str, list[Any], Responder]] = field(default_factory=deque)
    busy: str | None = None  # the lifecycle operation in progress
    # its manifest's allowed_messages, granted and refused (grants.py)
    grants: Grants = field(default_factory=lambda: Grants((), ()))
    facts: dict[str, Any] | None = None  # the plugin's metadata and schema (plugins/facts.py)
    facts_generation: int = 0  # counts the facts taken: a client's copy is stale if less
    loaded: bool = False  # a load (or start) of it has succeeded: 1.0 would list it

    def __post_init__(self) -> None:
        self.output = self.limits.output_budget()

    @property
    def plugin_id(self) -> str:
        return self.info.id

    @property
    def active(self) -> bool:
        return self.status == PluginState.ACTIVE and self.identity is not None

    def answer(self, with_facts: bool = False) -> dict[str, Any]:
        """What a finished lifecycle operation answers: the plugin and its state; after a
        (re)start, its facts too (``plugin``, ``generation``)."""
        # str(): the text, never a PluginState member (the codec refuses enum members)
        answer: dict[str, Any] = {"id": self.plugin_id, "status": str(self.status)}
        if with_facts:
            answer.update(plugin=self.facts, generation=self.facts_generation)
        return answer

    def snapshot(self, now: float, subscriptions: tuple[str, ...], waiting: int = 0
                 ) -> PluginReport:
        """The plugin in ``status``; ``subscriptions``: the patterns of its handlers;
        ``waiting``: the calls held until it is active again."""
        from spec_kit_runtime.wire.status import PluginReport, UsageFigures  # here: see its docs

        worker, usage = self.worker, self.usage
        return PluginReport(
            id=self.plugin_id, name=self.info.name, version=self.info.version,
            state=self.status, pid=worker.pid if worker else None,
            uptime=round(now - self.started_at, 3) if self.started_at and worker else None,
            busy=self.busy, queued=tuple(name for name, _, _ in self.ops),
            last_exit=self.last_exit, last_exit_at=self.last_exit_at,
            last_error=self.last_error, sandbox=self.info.sandbox_enabled,
            restarts=self.restarts, restart_type=self.tracker.policy.restart,
            grants=self.grants, limits=self.limits, output=self.output.figures(),
            messages=self.calls.figures(),
            cgroups=worker.cgroups if worker else (),
            hardening=worker.hardening if worker else {},
            usage=None if usage is None or worker is None else UsageFigures(
                round(usage.rss_mb, 1), round(usage.cpu_percent, 1), usage.processes,
                usage.open_files),
            subscriptions=subscriptions, waiting=waiting,
        )


class SlotTable(dict[str, PluginSlot]):
    """Every plugin under supervision, by id: one table, shared by the supervisor's parts."""

    def require(self, plugin_id: str) -> PluginSlot:
        """The slot of ``plugin_id``; PluginStateError if it is not loaded."""
        slot = self.get(plugin_id)
        if slot is None:
            raise PluginStateError(f"plugin '{plugin_id}' is not loaded", plugin=plugin_id)
        return slot

    def graph(self) -> dict[str, tuple[str, ...]]:
        """Each plugin's dependencies."""
        return {plugin_id: slot.info.dependencies for plugin_id, slot in self.items()}
