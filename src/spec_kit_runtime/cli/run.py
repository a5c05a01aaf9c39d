"""``spec-kit-runtime run``: the supervisor in the foreground until a signal or ``--for``.

The fork server is started first, before the supervisor's own modules are imported, so it
pre-imports the worker host on the other core meanwhile (it took a sixth of a cold start
when it waited for them).

A PluginContainer's private supervisor (``--private-dir``, ``--log-file``) is often the last
one left of its caller: it holds its folder while it runs and removes it as it exits
(``private_dir``), and logs to its file, capped (``private_logs``, ``logs.capped_file``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from contextlib import AbstractContextManager
from pathlib import Path

from spec_kit_runtime.supervisor.forkserver_link import ForkServerLink

log = logging.getLogger("spec_kit_runtime")


def run(args: argparse.Namespace) -> int:
    """Read the config, discover the plugins and serve them."""
    forkserver = ForkServerLink(spawn_timeout=10.0)  # the config's start_timeout, once read
    forkserver.start()
    try:
        with _private_folder(args.private_dir):
            _serve(args, forkserver)  # workers, if any, are gone when it returns or raises
    finally:
        forkserver.stop(timeout=10.0)  # at once when the supervisor has stopped it already
    return 0


def _private_folder(folder: Path | None) -> AbstractContextManager[None]:
    """``private_dir.owned(folder)`` for a container's supervisor, else nothing to do."""
    if folder is None:
        return contextlib.nullcontext()
    # imported here, after the fork server has started: see above
    from spec_kit_runtime.client import private_dir
    return private_dir.owned(folder)


def _serve(args: argparse.Namespace, forkserver: ForkServerLink) -> None:
    from spec_kit_runtime.client.launcher import signal_ready

    # imported here, after the fork server has started: see above
    from spec_kit_runtime.logs import formats as logs
    from spec_kit_runtime.plugins.config import RuntimeConfig, load_config
    from spec_kit_runtime.plugins.discovery import discover
    from spec_kit_runtime.supervisor.loop import Supervisor
    from spec_kit_runtime.wire.rundir import RuntimeDir, default_runtime_dir

    config = load_config(args.config) if args.config else RuntimeConfig()
    if args.plugins:
        config = RuntimeConfig(**{**config.__dict__,
                                  "plugin_paths": tuple(p.resolve() for p in args.plugins)})
    logs.configure(config.log_level, args.log_format or config.log_format, args.log_file)
    found = discover(config.plugin_paths)
    for error in found.errors:
        log.error("discovery: %s", error)
    plugins = [(info, config.settings_for(info.id).config) for info in found.plugins
               if config.settings_for(info.id).enabled]
    rundir = RuntimeDir.prepare(args.runtime_dir or config.runtime_dir or default_runtime_dir())
    supervisor = Supervisor(config, rundir, parent_pid=args.parent_pid, forkserver=forkserver,
                            log_file=args.log_file)
    if args.ready_fd is not None:
        signal_ready(args.ready_fd)
    if args.duration:
        supervisor.clock.at(supervisor.clock.now() + args.duration, supervisor.begin_shutdown)
    supervisor.serve(plugins)
