"""The ``spec-kit-runtime`` command: run the supervisor, send a message, show status."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spec_kit_contracts import Command, Event, Message, Request

from . import logs
from ._version import __version__
from .addressing import DIRECT_PREFIXES
from .client import SupervisorClient
from .config import RuntimeConfig, load_config
from .discovery import discover
from .errors import RuntimeFailure, SupervisorUnavailable
from .health import EXIT_CODES, UNHEALTHY
from .launcher import signal_ready
from .logs import FORMATS
from .rundir import RuntimeDir, default_runtime_dir
from .supervisor import Supervisor
from .top import run_top

log = logging.getLogger("spec_kit_runtime")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except RuntimeFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if args.command == "run" else 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spec-kit-runtime", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the supervisor in the foreground")
    run.add_argument("--config", type=Path, help="runtime config (YAML)")
    run.add_argument("--plugins", type=Path, nargs="+", metavar="DIR",
                     help="plugin search paths (instead of the config's plugin_paths)")
    run.add_argument("--runtime-dir", type=Path, help="private runtime directory")
    run.add_argument("--log-format", choices=FORMATS,
                     help="text (default) or json: one object per line (runtime.log_format)")
    run.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                     help="stop by itself after this many seconds")
    run.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    run.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)

    send = commands.add_parser("send", help="send a message with PLUGIN's scope, print the reply")
    send.add_argument("plugin", help="the plugin whose scope the message is sent with")
    send.add_argument("pattern", help="address, e.g. command:design:generate or validator:python")
    send.add_argument("--payload", default="{}", help="JSON object (see README)")
    send.add_argument("--timeout", type=float, help="seconds")
    send.set_defaults(handler=_send)

    status = commands.add_parser("status", help="list plugins and their state")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    health = commands.add_parser(
        "health", help="healthy / degraded / unhealthy with the reasons; exit code 0 / 1 / 2")
    health.add_argument("--json", action="store_true", help="machine-readable output")
    health.set_defaults(handler=_health)

    events = commands.add_parser("events", help="follow lifecycle events live, one line each")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument("--pattern", default="event:system:*",
                        help="which events (default: the supervisor's lifecycle events)")
    events.set_defaults(handler=_events)

    top = commands.add_parser("top", help="a live view of the plugins (q quits)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    top.set_defaults(handler=_top)

    stop = commands.add_parser("shutdown", help="stop the running supervisor and its plugins")
    stop.set_defaults(handler=_shutdown)

    plugin_ops = []
    for op, text in (("restart", "stop a plugin's worker in order and start it again"),
                     ("stop", "stop a plugin's worker; it stays stopped"),
                     ("start", "start a stopped or failed plugin")):
        sub = commands.add_parser(op, help=text)
        sub.add_argument("plugin")
        sub.set_defaults(handler=_plugin_op, op=op)
        plugin_ops.append(sub)

    for sub in (send, status, health, events, top, stop, *plugin_ops):
        sub.add_argument("--runtime-dir", type=Path, help="runtime directory of the supervisor")
    return parser


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else RuntimeConfig()
    if args.plugins:
        config = RuntimeConfig(**{**config.__dict__,
                                  "plugin_paths": tuple(p.resolve() for p in args.plugins)})
    logs.configure(config.log_level, args.log_format or config.log_format)
    found = discover(config.plugin_paths)
    for error in found.errors:
        log.error("discovery: %s", error)
    plugins = [(info, config.settings_for(info.id).config) for info in found.plugins
               if config.settings_for(info.id).enabled]
    rundir = RuntimeDir.prepare(args.runtime_dir or config.runtime_dir or default_runtime_dir())
    supervisor = Supervisor(config, rundir, parent_pid=args.parent_pid)
    if args.ready_fd is not None:
        signal_ready(args.ready_fd)
    if args.duration:
        supervisor.timers.at(supervisor.now() + args.duration, supervisor.begin_shutdown)
    supervisor.serve(plugins)
    return 0


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


def _send(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise RuntimeFailure(f"--payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RuntimeFailure("--payload must be a JSON object")
    client = SupervisorClient.find(args.runtime_dir)
    try:
        result = client.send(message_for(args.pattern, payload), args.plugin, args.timeout)
    finally:
        client.close()
    print(json.dumps(result, indent=2, default=str))
    return 0


def _status(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        status = client.control("status", timeout=10.0)
    finally:
        client.close()
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    sup = status["supervisor"]
    print(f"supervisor pid {sup['pid']}  version {sup['version']}  up {sup['uptime']:.0f}s  "
          f"{sup['endpoint']}")
    rows = [("ID", "VERSION", "STATE", "PID", "UPTIME", "RESTARTS", "MEM MB", "CPU%", "MSGS",
             "ERRS", "P50 MS", "P99 MS", "LAST EXIT")]
    for p in status["plugins"]:
        uptime = f"{p['uptime']:.0f}s" if p["uptime"] is not None else "-"
        usage, messages = p["usage"] or {}, p["messages"]
        rows.append((p["id"], p["version"], p["state"], str(p["pid"] or "-"), uptime,
                     str(p["restarts"]), _figure(usage.get("rss_mb")),
                     _figure(usage.get("cpu_percent")), str(messages["handled"]),
                     str(messages["errors"]), _figure(messages["p50_ms"]),
                     _figure(messages["p99_ms"]), p["last_exit"] or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


def _health(args: argparse.Namespace) -> int:
    """Exit 0 healthy, 1 degraded, 2 unhealthy or no supervisor answering (a probe)."""
    try:
        client = SupervisorClient.find(args.runtime_dir, control=True)
        try:
            verdict = client.control("health", timeout=10.0)
        finally:
            client.close()
    except RuntimeFailure as exc:
        verdict = {"status": UNHEALTHY, "live": False, "ready": False,
                   "reasons": [f"no supervisor answers: {exc}"]}
    if args.json:
        print(json.dumps(verdict, indent=2))
    else:
        print(f"{verdict['status']} (live: {'yes' if verdict['live'] else 'no'}, "
              f"ready: {'yes' if verdict['ready'] else 'no'})")
        for reason in verdict["reasons"]:
            print(f"  {reason}")
    return EXIT_CODES[verdict["status"]]


def _events(args: argparse.Namespace) -> int:
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


def _top(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        return run_top(lambda op: client.control(op, timeout=10.0), max(args.interval, 0.1))
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _plugin_op(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        result = client.control(args.op, plugin=args.plugin)
    finally:
        client.close()
    print(f"{result['id']}: {result['status']}")
    return 0


def _shutdown(args: argparse.Namespace) -> int:
    client = SupervisorClient.find(args.runtime_dir, control=True)
    try:
        client.control("shutdown", timeout=10.0)
    finally:
        client.close()
    return 0
