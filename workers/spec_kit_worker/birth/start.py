"""A worker's life, forked or spawned: bind it to its parent, take on its limits and its
confinement, serve its plugin; nothing of the plugin runs before this. At the end nothing of
the plugin is left: its processes go with the worker, those that left its process group too.

The order matters: what needs root (the cgroup join, a network namespace, opening what the
worker must reach, the Landlock ruleset's paths included) comes before the uid drop; what
needs a single thread (a network or user namespace, Landlock) before the ZeroMQ context
starts its threads; Landlock, which needs no_new_privs, last.

A worker that was the fork server's spare may have had its network namespace made and its
own ``/proc`` entry added to its ruleset ahead, while it idled (``spare``: where this order
allows it); the rest is done here, in this order.
"""

import dataclasses
import os
import signal
import socket
from typing import Any

import zmq

from spec_kit_runtime.linux import cgroups
from spec_kit_runtime.linux.process_tree import OWNER_VARIABLE, signal_descendants
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.confinement.landlock import Ruleset
from spec_kit_worker.confinement.layers import drop_to, own_network, own_proc, reach
from spec_kit_worker.confinement.prctl import PR_SET_NO_NEW_PRIVS, prctl
from spec_kit_worker.confinement.rlimits import apply_limits
from spec_kit_worker.loop.host import WorkerHost

from .parent import die_with_parent


def run_worker(bootstrap: Bootstrap, rules: Ruleset | str | None,
               network: bool | str | None = None, proc_allowed: bool = False,
               back: socket.socket | None = None, context: zmq.Context[Any] | None = None,
               cached: int | None = None, progress: int | None = None) -> int:
    """Run the worker host for ``bootstrap`` with its Landlock ``rules`` (``confine.ruleset``:
    built by the fork server for a fork, here for a fresh interpreter); the return value is
    the exit code. ``network``: what ``own_network`` gave when it was called ahead (None: it
    was not); ``proc_allowed``: ``rules`` let this process read its ``/proc`` entry already.
    ``back`` is a forked worker's return channel to the fork server, for the plugin's
    compiled code (``loop.code_cache``), and ``cached`` the fd of the sealed memfd with the
    code an earlier worker of the plugin compiled (or None): the host's loader closes both
    before any of the plugin's code runs. ``context``: ZeroMQ's, made ahead by a spare (no
    thread yet). ``progress``: the fd of the page where the worker writes the calls it begins
    (``loop.call_progress``), mapped and closed by the host."""
    mark("bootstrap")
    die_with_parent(bootstrap.parent_pid)
    cgroups.join(bootstrap.cgroups)
    os.environ[OWNER_VARIABLE] = str(os.getpid())  # inherited: marks the plugin's processes
    apply_limits(bootstrap)
    mark("limits")
    applied: dict[str, bool | str] = {}  # layer: True, or why the kernel would not have it
    if bootstrap.own_network:
        applied["own_network"] = own_network() if network is None else network
        mark("network")
    endpoint = reach(bootstrap.endpoint)
    os.chdir(bootstrap.data_dir)
    if isinstance(rules, Ruleset) and not proc_allowed:
        own_proc(rules)
    if bootstrap.uid is not None and bootstrap.gid is not None:
        drop_to(bootstrap.uid, bootstrap.gid, bootstrap.parent_pid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)  # no setuid or file capabilities for the plugin, ever
    if isinstance(rules, str):
        applied["landlock"] = rules
    elif rules is not None:
        rules.enforce()
        mark("landlock")
        applied["landlock"] = True
    host = WorkerHost(dataclasses.replace(bootstrap, endpoint=endpoint), applied, back, context,
                      cached, progress)
    mark("host-built")
    code = host.run()
    signal_descendants(os.getpid(), signal.SIGKILL)
    return code
