"""Prometheus metrics from a status and a health answer (no I/O; prometheus-client's format).

Built afresh at each scrape from the same snapshots ``status`` and ``health`` return, so the
figures on ``/metrics`` are the ones the CLI shows. Counters are the supervisor's own counts
since it started (they restart at zero with it, as Prometheus expects of counters).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from spec_kit_runtime.policy.health import EXIT_CODES, Health
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.status import Status


def exposition(status: Status, health: Health) -> bytes:
    """The text exposition format of the metrics of one status and health."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(status, health))
    return generate_latest(registry)


class _Snapshot(Collector):
    def __init__(self, status: Status, health: Health) -> None:
        self.status, self.health = status, health

    def collect(self) -> Iterator[Any]:
        supervisor, plugins, health = self.status.supervisor, self.status.plugins, self.health
        yield _gauge("spec_kit_supervisor_uptime_seconds", "Seconds since the supervisor started",
                     [([], supervisor.uptime)], labels=())
        yield _gauge("spec_kit_health_status",
                     "Health: 0 healthy, 1 degraded, 2 unhealthy",
                     [([], EXIT_CODES[health.status])], labels=())
        yield _gauge("spec_kit_ready", "1 when every plugin is where it was asked to be",
                     [([], int(health.ready))], labels=())
        yield _gauge("spec_kit_plugin_state", "1 for the state each plugin is in",
                     [([p.id, state.value], int(p.state == state))
                      for p in plugins for state in PluginState], labels=("plugin", "state"))
        yield _counter("spec_kit_plugin_restarts", "Restarts by the restart policy",
                       [([p.id], p.restarts) for p in plugins])
        yield _counter("spec_kit_plugin_messages", "Messages handled (calls answered, events)",
                       [([p.id], p.messages.handled) for p in plugins])
        yield _counter("spec_kit_plugin_errors", "Calls answered with an error",
                       [([p.id], p.messages.errors) for p in plugins])
        yield _gauge("spec_kit_plugin_in_flight", "Calls waiting for the plugin",
                     [([p.id], p.messages.in_flight) for p in plugins])
        yield _gauge("spec_kit_plugin_latency_p50_seconds", "p50 of the last calls' latency",
                     [([p.id], p.messages.p50_ms / 1000) for p in plugins
                      if p.messages.p50_ms is not None])
        yield _gauge("spec_kit_plugin_latency_p99_seconds", "p99 of the last calls' latency",
                     [([p.id], p.messages.p99_ms / 1000) for p in plugins
                      if p.messages.p99_ms is not None])
        sampled = [(p.id, p.usage) for p in plugins if p.usage]
        yield _gauge("spec_kit_plugin_memory_rss_bytes", "RSS of the worker's process tree",
                     [([pid], usage.rss_mb * 2**20) for pid, usage in sampled])
        yield _gauge("spec_kit_plugin_cpu_percent", "CPU of the worker's tree (100 = one core)",
                     [([pid], usage.cpu_percent) for pid, usage in sampled])
        yield _gauge("spec_kit_plugin_processes", "Processes in the worker's tree",
                     [([pid], usage.processes) for pid, usage in sampled])
        yield _counter("spec_kit_plugin_output_dropped_bytes",
                       "Output bytes dropped over the output limit",
                       [([p.id], p.output.dropped_bytes) for p in plugins])


def _gauge(name: str, text: str, samples: list[tuple[list[str], float]],
           labels: tuple[str, ...] = ("plugin",)) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=list(labels))
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _counter(name: str, text: str, samples: list[tuple[list[str], float]]
             ) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=["plugin"])
    for values, value in samples:
        family.add_metric(values, value)
    return family
