"""Is the supervisor healthy? A verdict over plugin states (pure; figures passed in).

* **live**: the loop answers; a health answer is itself the proof.
* **ready**: every plugin the supervisor was asked to run is where it was asked to be
  (active, or initialized), and none is still starting.
* **status**: ``unhealthy`` when a plugin failed (its restarts gave up), could not start, or
  crashed with no restart coming (a temporary plugin, or a crash during an operation);
  ``degraded`` when one is away from its target for now (restarting, starting, ended cleanly
  and by its policy not restarted) or was restarted and has not yet been up for its
  ``stable_after``; else ``healthy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .states import PluginState

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}  # of `spec-kit-runtime health`


@dataclass(frozen=True)
class PluginCondition:
    """What health needs to know of one plugin."""

    id: str
    state: str  # a PluginState, or whatever other status its worker reported
    target: str | None  # where a caller asked it to be; None: nowhere (stopped, loading)
    restarts: int = 0
    uptime: float | None = None  # of its current worker
    stable_after: float = 30.0
    last_exit: str | None = None
    last_error: str | None = None
    recovering: bool = False  # a restart is scheduled, or an operation is under way


@dataclass(frozen=True)
class Health:
    """The verdict: the ``health`` answer (its plain data: ``wire.status``)."""

    status: str  # HEALTHY, DEGRADED or UNHEALTHY
    live: bool
    ready: bool
    reasons: tuple[str, ...]


def assess(plugins: Iterable[PluginCondition], starting: Iterable[str] = (),
           not_started: Mapping[str, str] | None = None) -> Health:
    """The verdict; ``starting``: plugins still being started, ``not_started``: refused."""
    bad = [f"{plugin_id}: not started ({why})" for plugin_id, why in (not_started or {}).items()]
    weak = [f"{plugin_id}: starting" for plugin_id in starting]
    ready = not bad and not weak
    for plugin in plugins:
        since = f" (last exit: {plugin.last_exit})" if plugin.last_exit else ""
        if plugin.state == PluginState.FAILED:
            bad.append(f"{plugin.id}: failed ({plugin.last_error})")
            ready = False
        elif plugin.state == PluginState.ERROR and plugin.target is None:
            bad.append(f"{plugin.id}: did not start ({plugin.last_error})")
            ready = False
        elif plugin.state == PluginState.ERROR and not plugin.recovering:
            bad.append(f"{plugin.id}: crashed, not restarted{since}")
            ready = False
        elif plugin.target is not None and plugin.state != plugin.target:
            weak.append(f"{plugin.id}: {plugin.state}{since}")
            ready = False
        elif (plugin.restarts and plugin.uptime is not None
              and plugin.uptime < plugin.stable_after):
            weak.append(f"{plugin.id}: restarted {plugin.uptime:.0f}s ago{since}")
    status = UNHEALTHY if bad else DEGRADED if weak else HEALTHY
    return Health(status, live=True, ready=ready, reasons=tuple(bad + weak))
