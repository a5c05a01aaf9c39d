"""The spare worker: a child the fork server forks ahead of time, so that a spawn (above all
a restart) does not wait for the fork (about 2 ms here) nor for the child's set-up that
owes nothing to the plugin (0.5 ms).

A spare has already done what every forked child does first (``ForkServer._become``):
default signal handlers, its own stdout and stderr pipes as 1 and 2, none of the fork
server's file descriptors, a session of its own; and it dies with the fork server. Then it
blocks on a private socketpair, the only other thing it holds, and runs nothing else. On a
Spawn the fork server sends it the bootstrap and the Landlock ruleset built for that plugin
(the ruleset's fd by SCM_RIGHTS, or why there is none), and the spare goes on as that
plugin's worker: ``run_worker``, the same steps in the same order as after a direct fork
(cgroup, limits, namespace, uid, Landlock). A spare serves one plugin, once: nothing of one
plugin reaches another. If its channel closes first, it exits. Once handed over, the same
channel is the worker's return channel for its plugin's compiled code (``loop.code_cache``),
closed by the worker before any of the plugin's code runs.

The ruleset stays the fork server's to build: built in the worker, the same Python work
would cost 1.1 ms and copy 0.15 MiB of the fork server's pages (see ``confine.ruleset``).

The fork server forks a spare lazily: 20 ms after a fork-method spawn that left it without
one (its first, or one that used the spare; ``forkserver.SPARE_DELAY``), so that the fork
is off the path of that spawn and of its worker's start (on two cores, a fork at once slowed
that start enough to cancel most of the gain). Not at the fork server's start: a supervisor
whose plugins all use the spawn method never has a spare, and the fork server's start-up,
which the supervisor's first spawn may be waiting on, has no fork in it. A spare that dies
idle is forgotten and replaced only after the next fork-method spawn (which forks a worker
of its own), so one that keeps failing causes no fork loop.

Memory: an idle spare's USS is about 1.2 MiB just forked (what any fork of the fork server
costs here), and grows as the fork server writes to pages they shared (0.3 MiB for one
reap); a worker that was the spare ends up about 0.1 MiB above one forked directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from dataclasses import dataclass

from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.bootstrap import MAX_BOOTSTRAP_BYTES, Bootstrap
from spec_kit_worker.confinement.landlock import Ruleset
from spec_kit_worker.loop import code_cache

from .parent import die_with_parent
from .start import run_worker

_MESSAGE_BYTES = MAX_BOOTSTRAP_BYTES + codec.HEADER_MARGIN  # a bootstrap and its ruleset's ABI


def channel() -> tuple[socket.socket, socket.socket]:
    """A new spare's channel: the fork server's end, with room for any bootstrap in one
    packet (so handing it over never blocks), and the spare's end (a return channel, see
    ``code_cache.channel``)."""
    ours, its = code_cache.channel()
    try:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * _MESSAGE_BYTES)
    except OSError:
        ours.close()
        its.close()
        raise
    return ours, its


@dataclass(frozen=True)
class Spare:
    """The fork server's side of its idle spare: the pid, the channel's end and the read
    ends of the spare's stdout and stderr pipes."""

    pid: int
    channel: socket.socket
    stdout: int
    stderr: int

    def fds(self) -> tuple[int, ...]:
        """Its file descriptors in the fork server, which no other child may keep: with the
        channel, a plugin could hand the spare a bootstrap of its own choosing."""
        return self.channel.fileno(), self.stdout, self.stderr

    def become(self, body: bytes, rules: Ruleset | str | None) -> tuple[int, int, int] | None:
        """Make the spare the worker of the bootstrap ``body`` with ``rules``: its pid and the
        read ends of its output (the caller's to close). None when it cannot take it (it
        died, or the bootstrap does not fit a packet): it is discarded then. The channel
        stays open: the worker's return channel from now on, the caller's to close."""
        landlock, fds = (rules.abi, [rules.fileno()]) if isinstance(rules, Ruleset) else (rules, [])
        try:
            socket.send_fds(self.channel, [codec.pack_value([body, landlock])], fds,
                            socket.MSG_DONTWAIT)
        except OSError:
            self.discard()
            return None
        return self.pid, self.stdout, self.stderr

    def discard(self) -> None:
        """Kill the spare (reaped like any child of the fork server) and close its fds."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        """Close the fork server's fds of a spare that is gone."""
        self.channel.close()
        os.close(self.stdout)
        os.close(self.stderr)


def serve(channel: socket.socket, server_pid: int) -> int:
    """In the spare, once set up: wait for a plugin, then be its worker; the exit code."""
    die_with_parent(server_pid)
    handed = receive(channel)
    if handed is None:
        channel.close()
        return 0
    return run_worker(*handed, channel)


def receive(channel: socket.socket) -> tuple[Bootstrap, Ruleset | str | None] | None:
    """Block until the fork server hands over a bootstrap and its ruleset (see
    ``Spare.become``); None if the channel closes first. The channel stays open."""
    message, fds, flags, _ = socket.recv_fds(channel, _MESSAGE_BYTES, 1)
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        raise ProtocolError("the spare's bootstrap came truncated")
    if not message:
        return None
    body, landlock = codec.unpack_value(message)
    boot = Bootstrap.unpack(body)
    return boot, Ruleset.received(fds[0], landlock) if fds else landlock
