"""The ``spec-kit-runtime`` command: run the supervisor, send a message, show status.

Each command's code is imported only when it runs (``run``, ``commands``): ``run``
starts the fork server before importing the supervisor, so the two import in parallel,
and a client command such as ``status`` loads no supervisor code at all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from spec_kit_runtime._version import __version__
from spec_kit_runtime.logs.formats import FORMATS


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = _handler(args.handler)(args)
        return result
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Imported only now: errors loads the contracts, which `run` imports after it has
        # started the fork server (see cli/run.py).
        from spec_kit_runtime.errors import RuntimeFailure

        if not isinstance(exc, RuntimeFailure):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2 if args.command == "run" else 1


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
    # A PluginContainer's private supervisor: the folder it removes as it exits
    # (private_dir.py), and the file its stdout and stderr lead to (private_logs.py).
    run.add_argument("--private-dir", type=Path, help=argparse.SUPPRESS)
    run.add_argument("--log-file", type=Path, help=argparse.SUPPRESS)
    run.set_defaults(handler="run:run")

    send = commands.add_parser("send", help="send a message with PLUGIN's scope, print the reply")
    send.add_argument("plugin", help="the plugin whose scope the message is sent with")
    send.add_argument("pattern", help="address, e.g. command:design:generate or validator:python")
    send.add_argument("--payload", default="{}", help="JSON object (see README)")
    send.add_argument("--timeout", type=float, help="seconds")
    send.add_argument("--fail-fast", action="store_true",
                      help="fail at once if the plugin is starting or restarting, instead of "
                           "waiting for it (runtime.wait_for_ready)")
    send.set_defaults(handler="commands:send")

    status = commands.add_parser("status", help="list plugins and their state")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler="commands:status")

    health = commands.add_parser(
        "health", help="healthy / degraded / unhealthy with the reasons; exit code 0 / 1 / 2")
    health.add_argument("--json", action="store_true", help="machine-readable output")
    health.set_defaults(handler="commands:health")

    events = commands.add_parser("events", help="follow lifecycle events live, one line each")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument("--pattern", default="event:system:*",
                        help="which events (default: the supervisor's lifecycle events)")
    events.set_defaults(handler="commands:events")

    top = commands.add_parser("top", help="a live view of the plugins (q quits)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    top.set_defaults(handler="commands:top")

    stop = commands.add_parser("shutdown", help="stop the running supervisor and its plugins")
    stop.set_defaults(handler="commands:shutdown")

    plugin_ops = []
    for op, text in (("restart", "stop a plugin's worker in order and start it again"),
                     ("stop", "stop a plugin's worker; it stays stopped"),
                     ("start", "start a stopped or failed plugin")):
        sub = commands.add_parser(op, help=text)
        sub.add_argument("plugin")
        sub.set_defaults(handler="commands:plugin_op", op=op)
        plugin_ops.append(sub)

    for sub in (send, status, health, events, top, stop, *plugin_ops):
        sub.add_argument("--runtime-dir", type=Path, help="runtime directory of the supervisor")
    return parser




def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    """The function ``module:function`` behind a command, imported now."""
    module, _, function = name.partition(":")
    handler: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f".{module}", __package__), function)
    return handler
