"""The client commands of ``spec-kit-runtime``: send, status, health, events, top, and the
plugin and shutdown operations, each a short conversation with the running supervisor."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spec_kit_contracts import Command, Event, Message, Request

from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.errors import RuntimeFailure, SupervisorUnavailable
from spec_kit_runtime.policy.health import EXIT_CODES, UNHEALTHY, Health
from spec_kit_runtime.wire.addressing import DIRECT_PREFIXES
from spec_kit_runtime.wire.protocol import ControlOp
from spec_kit_runtime.wire.status import Status, from_data, to_data

from .top import run_top


def message_for(pattern: str, payload: dict[str, Any]) -> Message:
    """The contracts message the CLI sends to ``pattern`` (see README for payloads)."""
    kind, _, name = pattern.partition(":")
    if kind == "command":
        return Command(command_name=name, arguments=list(payload.get("arguments", [])),
                       options=dict(payload.get("options", {})))
    if kind == "event":
        return Event(event_name=name, event_data=payload)
    if kind == "request":
        return Request(method=name, params=payload)
    if pattern.startswith(DIRECT_PREFIXES):
        return Request(method=pattern, params=payload)
    raise RuntimeFailure(
        f"cannot send to '{pattern}': use command:, event:, request:, generator:, "
        "validator: or hook:"
    )


def send(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise RuntimeFailure(f"--payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RuntimeFailure("--payload must be a JSON object")
    client = SupervisorClient.find(args.runtime_dir)
    try:
        result = client.send(message_for(args.pattern, payload), args.plugin, args.timeout,
                             wait_for_ready=False if args.fail_fast else None)
    finally:
        client.close()
    print(json.dumps(result, indent=2, default=str))
    return 0


def status(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        answer = client.control(ControlOp.STATUS, timeout=10.0)
    finally:
        client.close()
    if args.json:  # the answer as it came, like /status and container.status()
        print(json.dumps(answer, indent=2, default=str))
        return 0
    status = from_data(Status, answer)
    sup = status.supervisor
    print(f"supervisor pid {sup.pid}  version {sup.version}  up {sup.uptime:.0f}s  "
          f"{sup.endpoint}")
    rows = [("ID", "VERSION", "STATE", "PID", "UPTIME", "RESTARTS", "MEM MB", "CPU%", "MSGS",
             "ERRS", "P50 MS", "P99 MS", "LAST EXIT")]
    for p in status.plugins:
        uptime = f"{p.uptime:.0f}s" if p.uptime is not None else "-"
        usage, messages = p.usage, p.messages
        rows.append((p.id, p.version, p.state, str(p.pid or "-"), uptime,
                     str(p.restarts), _figure(usage.rss_mb if usage else None),
                     _figure(usage.cpu_percent if usage else None), str(messages.handled),
                     str(messages.errors), _figure(messages.p50_ms),
                     _figure(messages.p99_ms), p.last_exit or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


def health(args: argparse.Namespace) -> int:
    """Exit 0 healthy, 1 degraded, 2 unhealthy or no supervisor answering (a probe)."""
    try:
        client = SupervisorClient.find(args.runtime_dir, control=True)
        try:
            verdict = from_data(Health, client.control(ControlOp.HEALTH, timeout=10.0))
        finally:
            client.close()
    except RuntimeFailure as exc:
        verdict = Health(UNHEALTHY, live=False, ready=False,
                         reasons=(f"no supervisor answers: {exc}",))
    if args.json:
        print(json.dumps(to_data(verdict), indent=2))
    else:
        print(f"{verdict.status} (live: {'yes' if verdict.live else 'no'}, "
              f"ready: {'yes' if verdict.ready else 'no'})")
        for reason in verdict.reasons:
            print(f"  {reason}")
    return EXIT_CODES[verdict.status]


def events(args: argparse.Namespace) -> int:
    """Print each event as it comes; ends when the supervisor does (exit 0) or on Ctrl-C."""
    client = SupervisorClient.find(args.runtime_dir)
    try:
        for event in client.follow(args.pattern):
            name = getattr(event, "event_name", "?")
            data = getattr(event, "event_data", None) or {}
            when = event.timestamp.isoformat(timespec="milliseconds")
            if args.json:
                print(json.dumps({"time": when, "event": name, "source": event.source,
                                  "data": data}, default=str), flush=True)
            else:
                fields = " ".join(f"{key}={json.dumps(value, default=str)}"
                                  for key, value in data.items())
                print(f"{when} {name} {fields}".rstrip(), flush=True)
    except SupervisorUnavailable:
        print("the supervisor stopped", file=sys.stderr)
    finally:
        client.close()
    return 0


def top(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        return run_top(lambda op: client.control(op, timeout=10.0), max(args.interval, 0.1))
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def plugin_op(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        result = client.control(ControlOp(args.op), plugin=args.plugin)
    finally:
        client.close()
    print(f"{result['id']}: {result['status']}")
    return 0


def shutdown(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        client.control(ControlOp.SHUTDOWN, timeout=10.0)
    finally:
        client.close()
    return 0
