"""``spec-kit-runtime run``: the supervisor in the foreground until a signal or ``--for``.

The fork server is started first, before the supervisor's own modules are imported, so it
pre-imports the worker host on the other core meanwhile (it took a sixth of a cold start
when it waited for them).
"""

from __future__ import annotations

import argparse
import logging

from .forkserver_link import ForkServerLink

log = logging.getLogger("spec_kit_runtime")


def run(args: argparse.Namespace) -> int:
    """Read the config, discover the plugins and serve them."""
    forkserver = ForkServerLink(spawn_timeout=10.0)  # the config's start_timeout, once read
    forkserver.start()
    try:
        _serve(args, forkserver)
    finally:
        forkserver.stop(timeout=10.0)  # at once when the supervisor has stopped it already
    return 0


def _serve(args: argparse.Namespace, forkserver: ForkServerLink) -> None:
    from . import logs  # imported here, after the fork server has started: see above
    from .config import RuntimeConfig, load_config
    from .discovery import discover
    from .launcher import signal_ready
    from .rundir import RuntimeDir, default_runtime_dir
    from .supervisor import Supervisor

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
    supervisor = Supervisor(config, rundir, parent_pid=args.parent_pid, forkserver=forkserver)
    if args.ready_fd is not None:
        signal_ready(args.ready_fd)
    if args.duration:
        supervisor.timers.at(supervisor.now() + args.duration, supervisor.begin_shutdown)
    supervisor.serve(plugins)
