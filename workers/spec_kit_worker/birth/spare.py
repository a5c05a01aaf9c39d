"""The spare worker: a child the fork server forks ahead of time, so that a spawn (above all
a restart) does not wait for the fork (about 2 ms here) nor for the child's set-up that
owes nothing to the plugin (0.5 ms).

A spare has already done what every forked child does first (``ForkServer._become``):
default signal handlers, its own stdout and stderr pipes as 1 and 2, none of the fork
server's file descriptors, a session of its own; and it dies with the fork server. Then it
rehearses (``rehearsal``: loads a plugin of ours and forgets it, so that its worker's load
finds the pages it writes private already), makes ZeroMQ's context (which starts no thread
until a socket, so it may come before the confinement), and blocks on a private
socketpair, the only other thing it holds besides the context, running nothing else (no
plugin's compiled code either: forked before, it closed the fork server's memfds with its
other fds). On a Spawn the fork server sends it the bootstrap and the Landlock ruleset for
that plugin (the ruleset's fd by SCM_RIGHTS, or why there is none), with that plugin's
compiled code if it has it (the sealed memfd's fd, by SCM_RIGHTS too; ``birth.code_store``)
and the page where the worker will write the calls it begins (``loop.call_progress``). The
spare goes on as that plugin's worker: ``run_worker``, the same steps in the same order as
after a direct fork (cgroup, limits, namespace, uid, Landlock). A spare serves one
plugin, once: nothing of one plugin reaches another. If its channel closes first, it exits.
Once handed over, the same channel is the worker's return channel for its plugin's compiled
code (``loop.code_cache``); it and the memfd are closed by the worker before any of the
plugin's code runs.

The ruleset stays the fork server's to build: built in the worker, the same Python work
would cost 1.1 ms and copy 0.15 MiB of the fork server's pages (see ``confine.ruleset``).

Prepared ahead. A spare is prepared for the ``Kind`` of worker it will most likely become:
that of the fork-method spawn after which it was forked. Off a restart's path, then:

* its ruleset: the fork server builds it as it forks the spare, with every rule that owes
  nothing to the plugin (``layers.common_rules``) and the spare's own ``/proc/PID``
  (``own_proc``); a Spawn of that kind only adds the plugin's rules (``plugin_rules``) to
  it (spawn-received → ruleset-built: 0.6 → 0.3 ms here). Each spare has a ruleset of its
  own, which no other process sees (the fork server's other children close it), handed
  over once, so no two workers share one: the kernel's ruleset is a mutable object until
  enforced, and holds one worker's pid.
* its network namespace (kind with ``own_network``): the spare makes it itself, at once,
  single-threaded (``layers.own_network``), and the worker reports that outcome, a refusal
  included, as if it had asked then (limits → network: 0.55 → 0.03 ms here). Only where
  doing it before the steps ``run_worker`` puts ahead of it (die with the parent, cgroup
  join, environment, rlimits) changes nothing, which is everywhere but with cgroups: those
  steps need no privilege, rlimits only ever lower a limit (allowed in a user namespace
  too) and do not apply to making a namespace, and what comes after the namespace (reach,
  chdir, the uid drop as root, no_new_privs, Landlock) stays after it, as today; so for
  root (a plain network namespace, the uid dropped later as before) and for another user
  (a user namespace: today too everything after it happens inside it) it is the same
  worker. With cgroups (a bootstrap that names groups) it is not: the kernel charges the
  namespace's memory (its loopback device, tables) to the memory cgroup the process is in
  when it makes it, which must be the plugin's; and a non-root worker would write to its
  cgroups from inside its user namespace. So such a kind does not make its namespace ahead
  (the worker does, after its join, as today); a join costs 13 ms anyway.

A Spawn of another kind: a spare that made no namespace takes it all the same, with a
ruleset built whole for it as for a direct fork (its ``/proc`` entry added by the fork
server too), so it still saves the fork; one that made a namespace cannot (its worker would
have none, or would have it before its cgroup join): it is killed, and the worker forked
directly. The next spare is prepared for the new kind. A spare whose preparation fails
cannot be used: a ruleset the fork server could not build, the spare is killed at once; a
namespace that raised, the spare dies idle (a refusal is an outcome, kept and reported).
An idle spare holds its namespace: one more (a user namespace too, not as root) against the
per-user limits (``/proc/sys/user/max_*_namespaces``).

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
from typing import Any, NamedTuple

import zmq

from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.bootstrap import MAX_BOOTSTRAP_BYTES, Bootstrap
from spec_kit_worker.confinement.landlock import Ruleset
from spec_kit_worker.confinement.layers import (
    common_identity,
    common_rules,
    own_network,
    own_proc,
    plugin_rules,
    ruleset,
)
from spec_kit_worker.loop import code_cache

from .fd_passing import receive_fds
from .parent import die_with_parent
from .rehearsal import rehearse
from .start import run_worker

_MESSAGE_BYTES = MAX_BOOTSTRAP_BYTES + codec.HEADER_MARGIN  # a bootstrap and its ruleset's ABI
# what the fds handed over are, in the order they come
RULESET, CODE, PROGRESS = "ruleset", "code", "progress"
_ROLES = (RULESET, CODE, PROGRESS)


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


class Kind(NamedTuple):
    """What a spare is prepared for: its network namespace made ahead (``own_network``), and
    its ruleset's plugin-independent part (``landlock``, ``network``)."""

    own_network: bool
    landlock: bool
    network: bool


def kind_of(boot: Bootstrap) -> Kind:
    """The kind of spare that can be prepared ahead for ``boot``: no namespace ahead with
    cgroups (see above); ``network`` only matters to a ruleset."""
    return Kind(boot.own_network and not boot.cgroups, boot.landlock,
                boot.landlock and boot.network)


UNPREPARED = Kind(own_network=False, landlock=False, network=False)


class Handed(NamedTuple):
    """What the spare receives to become a worker: the bootstrap, its Landlock ruleset (or
    why there is none), the fd of its plugin's compiled code (a sealed memfd) if any, and
    the fd of its call progress page (``loop.call_progress``)."""

    boot: Bootstrap
    rules: Ruleset | str | None
    code: int | None
    progress: int | None


@dataclass
class Spare:
    """The fork server's side of its idle spare: the pid, the channel's end and the read
    ends of the spare's stdout and stderr pipes; its kind, and its ruleset once ``prepare``
    built it (the fork server's, until handed over)."""

    pid: int
    channel: socket.socket
    stdout: int
    stderr: int
    kind: Kind = UNPREPARED
    rules: Ruleset | str | None = None
    identity: tuple[tuple[int, int] | None, ...] = ()  # of the files its rules hold

    def fds(self) -> tuple[int, ...]:
        """Its file descriptors in the fork server, which no other child may keep: with the
        channel, a plugin could hand the spare a bootstrap of its own choosing; with the
        ruleset, add rules to the spare's."""
        rules = (self.rules.fileno(),) if isinstance(self.rules, Ruleset) else ()
        return self.channel.fileno(), self.stdout, self.stderr, *rules

    def prepare(self) -> None:
        """Build the spare's ruleset for its kind, but for the plugin's rules (raises
        OSError), noting which files its rules hold (``common_identity``)."""
        self.identity = common_identity(self.kind.network)
        self.rules = common_rules(self.kind.landlock, self.kind.network)
        if isinstance(self.rules, Ruleset):
            own_proc(self.rules, self.pid)
        mark("spare-ruleset")

    def _rules_hold(self) -> bool:
        """The ruleset built ahead still names the files it would name now: a spare may
        idle for days, and a rule holds the file it was given (``/etc/resolv.conf``, say,
        replaced since by a new one)."""
        return common_identity(self.kind.network) == self.identity

    def take(self, boot: Bootstrap, body: bytes, code: int | None = None,
             progress: int | None = None) -> tuple[int, int, int] | None:
        """Make the spare the worker of ``boot`` (packed: ``body``), with its ruleset
        completed (of its kind) or built whole (see above), ``code``, the fd of its
        plugin's compiled code, and ``progress``, its call progress page (both still the
        caller's): its pid and the read ends of its
        output (the caller's to close). None when it cannot take it (it made a namespace
        this worker must not have, or not yet; it died; the bootstrap does not fit a
        packet): it is discarded then. A ruleset that cannot be built raises, the spare
        discarded too."""
        try:
            same = kind_of(boot) == self.kind
            if not same and self.kind.own_network:
                self.discard()
                return None
            if same and (not isinstance(self.rules, Ruleset) or self._rules_hold()):
                if isinstance(self.rules, Ruleset):
                    plugin_rules(self.rules, boot)
            else:  # another kind, or files replaced since: a ruleset built whole
                self._release_rules()
                self.rules = ruleset(boot)
                if isinstance(self.rules, Ruleset):
                    own_proc(self.rules, self.pid)
            mark("ruleset-built")
            return self.become(body, self.rules, code, progress)
        except BaseException:
            self.discard()
            raise
        finally:
            self._release_rules()  # ours; the worker enforces its own copy

    def become(self, body: bytes, rules: Ruleset | str | None, code: int | None = None,
               progress: int | None = None) -> tuple[int, int, int] | None:
        """Make the spare the worker of the bootstrap ``body`` with ``rules``, ``code``
        (the fd of its plugin's compiled code) and ``progress`` (its call progress page);
        each stays the caller's, the spare gets its own): its pid and the read ends of its
        output (the caller's to close). None when it cannot take it (it died, or the
        bootstrap does not fit a packet): it is discarded then. The channel stays open: the
        worker's return channel from now on, the caller's to close."""
        landlock: int | str | None
        fds: list[int] = []
        roles: list[str] = []  # which fd is which
        if isinstance(rules, Ruleset):
            landlock = rules.abi
            fds.append(rules.fileno())
            roles.append(RULESET)
        else:
            landlock = rules
        for fd, role in ((code, CODE), (progress, PROGRESS)):
            if fd is not None:
                fds.append(fd)
                roles.append(role)
        try:
            socket.send_fds(self.channel, [codec.pack_value([body, landlock, roles])], fds,
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
        self._release_rules()

    def _release_rules(self) -> None:
        if isinstance(self.rules, Ruleset):
            self.rules.close()
        self.rules = None


def serve(channel: socket.socket, server_pid: int, network_ahead: bool = False) -> int:
    """In the spare, once set up: make its network namespace if ``network_ahead`` (see
    above), wait for a plugin, then be its worker; the exit code."""
    die_with_parent(server_pid)
    made = own_network() if network_ahead else None
    if network_ahead:
        mark("spare-network")
    rehearse()
    context = zmq.Context()  # no thread until its first socket: see run_worker's order
    handed = receive(channel)
    if handed is None:
        channel.close()
        return 0
    boot, rules, code, progress = handed
    if network_ahead and not kind_of(boot).own_network:  # the fork server's check: kept
        raise ProtocolError("a spare with a network namespace of its own was handed a "
                            "worker that must not have one yet")
    # its /proc entry: the fork server's; the channel: the worker's way back for its code
    # A namespace refused to the idle spare is asked for again: it may be had by now.
    return run_worker(boot, rules, True if made is True else None, proc_allowed=True,
                      back=channel, cached=code, context=context, progress=progress)


def receive(channel: socket.socket) -> Handed | None:
    """Block until the fork server hands over a bootstrap, its ruleset, maybe its
    plugin's code, and its call progress page (see ``Spare.become``); None if the channel
    closes first. The channel stays open. Anything malformed raises ProtocolError, the fds
    that came closed."""
    message, fds, flags = receive_fds(channel, _MESSAGE_BYTES, len(_ROLES))
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ProtocolError("the spare's bootstrap came truncated")
        if not message and not fds:
            return None
        body, landlock, roles = _fields(codec.unpack_value(message), len(fds))
        boot = Bootstrap.unpack(body)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    given = dict(zip(roles, fds, strict=True))
    # an ABI comes with a ruleset's fd (see _fields)
    rules = Ruleset.received(given[RULESET], landlock) if isinstance(landlock, int) else landlock
    return Handed(boot, rules, given.get(CODE), given.get(PROGRESS))


def _fields(value: Any, fds: int) -> tuple[bytes, int | str | None, list[str]]:
    """The handed-over message's body, Landlock ABI (or why none) and fd roles, checked
    against the number of ``fds`` that came with it."""
    if not isinstance(value, list) or len(value) != 3:
        raise ProtocolError("the spare's bootstrap is malformed")
    body, landlock, roles = value
    if not isinstance(body, bytes) or type(landlock) not in (int, str, type(None)):
        raise ProtocolError("the spare's bootstrap is malformed")
    if not isinstance(roles, list) or len(roles) != fds \
            or any(role not in _ROLES for role in roles) or len(set(roles)) != fds \
            or (RULESET in roles) != isinstance(landlock, int):
        raise ProtocolError("the spare's bootstrap does not say which fd is which")
    return body, landlock, roles
