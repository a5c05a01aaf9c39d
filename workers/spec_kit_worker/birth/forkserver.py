"""The fork server: the pre-imported parent of every worker, and the one place they are reaped.

The supervisor starts it once (``python -m spec_kit_worker.birth.forkserver``) with one end of a
private socketpair. It imports the worker host and everything it needs up front, so a
worker is a fork away (about 2 ms, its pages shared copy-on-write) instead of a fresh
interpreter (about 30 ms); the spawn method still gives a plugin a fresh interpreter.

It is a child subreaper: whatever a worker's tree orphans is reparented here, never to
init, so the supervisor's promise "nothing outlives its worker" has a process to keep it:

* a worker that ends, on its own or killed, takes its process group with it, and every
  adopted process that was its own: marked so by the ``SPEC_KIT_WORKER`` variable each
  worker puts in its environment for its children to inherit, else by its session;
* a signal the supervisor asks for reaches the worker's group and its whole tree, so a
  child that left the group (``setsid``) is not missed;
* when the supervisor goes, by shutdown or SIGKILL (the fork server watches it through a
  pidfd), everything below the fork server is killed before it exits.

A forked worker is usually the spare (``spare``): a child forked ahead of time, a little
after the previous fork-method spawn, that waits for its bootstrap, prepared for a worker of
that spawn's kind; so a restart waits neither for a fork nor for what of its confinement
owes nothing to the plugin (most of its Landlock ruleset; mostly, its network namespace).
Until then it is no worker: it is neither signalled, nor swept, nor reported; it is killed
with everything else.

It never runs plugin code itself: only its forked children do, after leaving its loop. Nor
does it compile any, nor read any compiled: a worker that was the spare and had to compile
its plugin sends the code back in a sealed memfd (``code_returns``); the fork server keeps the fd
(``code_store``) and gives it to the later workers of that plugin only: a direct fork keeps
that one fd open (every other child closes all of them, as it closes the fork server's
other fds), a spare gets it with its bootstrap (``loop.code_cache``).

Every worker gets a page of its own, made at its spawn, where it writes the id of each call
it begins (``loop.call_progress``). The fork server keeps the page's fd, never maps it, and
reads it when the worker ends: ``Exited`` tells the supervisor which of its calls the worker
had begun, so that those it had not can wait for its replacement.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.linux import cgroups
from spec_kit_runtime.linux.process_tree import children, owner_of, signal_descendants
from spec_kit_runtime.logs import timeline
from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.bootstrap import MAX_BOOTSTRAP_BYTES, Bootstrap
from spec_kit_runtime.wire.protocol import Exited, Record, Signal, Spawn, Spawned
from spec_kit_worker.confinement.landlock import Ruleset
from spec_kit_worker.confinement.layers import interpreter_paths, ruleset
from spec_kit_worker.loop import call_progress
from spec_kit_worker.loop import loader as _preloaded_loader  # noqa: F401
from spec_kit_worker.loop.host import configure_logging

from . import spare
from .code_returns import CodeReturns
from .code_store import CodeStore
from .parent import adopt_orphans, die_with_parent
from .spare import UNPREPARED, Kind, Spare, kind_of
from .start import run_worker

MAX_RECORD_BYTES = MAX_BOOTSTRAP_BYTES + codec.HEADER_MARGIN
_EXIT_SETUP_FAILED = 70  # a child that could not become a worker
# The next spare is forked once no fork-method spawn came for this long (seconds): forked
# at once, it took CPU from the start of the worker just handed over (two cores here:
# restart median 16.1 ms at once, 14.8 ms so, 17.0 ms without a spare).
SPARE_DELAY = 0.02


class ForkServer:
    """Forks workers on request, reports their ends, and kills whatever they leave behind."""

    def __init__(self, control: socket.socket, supervisor_pid: int) -> None:
        self.control = control
        self.supervisor_fd = os.pidfd_open(supervisor_pid)
        die_with_parent(supervisor_pid, signal.SIGTERM)  # also checks the pidfd's pid is it
        adopt_orphans()
        self.workers: dict[int, tuple[str, ...]] = {}  # pid → its cgroups (maybe none)
        self._progress: dict[int, int] = {}  # pid → the fd of its call progress page
        self._wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up fd carries the news
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
        self._wake_write = wake_write
        self._running = True
        self._spare: Spare | None = None  # the idle spare worker, once forked (see spare)
        self._spare_due: float | None = None  # when to fork the next one (none: no spare)
        self._kind: Kind = UNPREPARED  # what the next spare is prepared for: the last fork's
        self._poller = select.poll()
        self._codes = CodeStore()  # each plugin's compiled code: a sealed memfd's fd
        self._returns = CodeReturns(self._poller, self._codes)  # forked workers' channels

    # -- loop ------------------------------------------------------------------------------

    def serve(self) -> int:
        for fd in (self.control.fileno(), self._wake_read, self.supervisor_fd):
            self._poller.register(fd, select.POLLIN)
        while self._running:
            events = self._poller.poll(self._until_spare())
            try:
                for fd, _ in events:
                    self._handle(fd)
                if self._running:  # no spare forked only to be killed at once
                    self._spare_when_due()
            except Exception:  # a bug of ours: every worker depends on this loop
                traceback.print_exc()
        self._kill_everything()
        return 0

    def _handle(self, fd: int) -> None:
        """Act on the one of the loop's fds that ``poll`` found ready."""
        if fd == self.control.fileno():
            self._control()
        elif fd == self._wake_read:
            self._woken()
        elif fd in self._returns:
            self._returns.ready(fd)
        elif fd == self.supervisor_fd:
            self._running = False  # the supervisor is gone

    def _control(self) -> None:
        try:
            frame = self.control.recv(MAX_RECORD_BYTES)
        except OSError:
            frame = b""
        if not frame:  # the supervisor closed its end: it is stopping
            self._running = False
            return
        try:
            record = codec.decode(frame)
        except ProtocolError as exc:
            print(f"fork server: dropped a malformed record: {exc.message}", file=sys.stderr)
            return
        if isinstance(record, Spawn):
            self._spawn(record)
        elif isinstance(record, Signal):
            self._signal(record.pid, record.signum)

    def _woken(self) -> None:
        with contextlib.suppress(BlockingIOError):
            signals = os.read(self._wake_read, 512)
            if signal.SIGTERM in signals:
                self._running = False
        self._reap()

    def _send(self, record: Record, fds: tuple[int, ...] = ()) -> None:
        with contextlib.suppress(OSError):  # the supervisor is gone: the loop notices
            socket.send_fds(self.control, [codec.encode(record)], list(fds))

    # -- workers ---------------------------------------------------------------------------

    def _spawn(self, request: Spawn) -> None:
        """Start the worker; answer with its pid and the read ends of its stdout and stderr.

        A forked worker is the spare when there is one; the next one is forked later (see
        ``SPARE_DELAY``), so that neither this spawn nor the worker's start waits for it.
        """
        mark("spawn-received")
        fork = request.method == "fork"
        page = _new_page()
        try:
            boot = Bootstrap.unpack(request.body)
            if request.method not in ("fork", "spawn"):
                raise ProtocolError(f"unknown start method {request.method!r}")
            pid, stdout, stderr = (self._fork(boot, request.body, page) if fork
                                   else self._fresh(boot, page))
        except (ProtocolError, OSError) as exc:
            self._send(Spawned(request.tag, 0, str(exc)))
        else:
            self.workers[pid] = boot.cgroups
            if page is not None:
                self._progress[pid], page = page, None  # the worker's, read at its end
            self._send(Spawned(request.tag, pid, ""), (stdout, stderr))
            mark("spawned-sent")
            os.close(stdout)
            os.close(stderr)
        finally:
            if page is not None:
                os.close(page)
        if fork and self._spare is None:  # a failed spawn may have used it up too
            self._spare_due = time.monotonic() + SPARE_DELAY

    def _fork(self, boot: Bootstrap, body: bytes,
              progress: int | None) -> tuple[int, int, int]:
        """A forked worker for ``boot`` (packed: ``body``) with its call ``progress`` page:
        the spare (its channel then the way back for its plugin's code, ``code_returns``),
        else a fork of its own; either way with that code if a worker of the plugin sent it
        before (``code_store``)."""
        self._kind = kind_of(boot)
        idle, self._spare = self._spare, None
        cached = None if boot.sandbox else self._codes.fd_of((boot.plugin_id, boot.plugin_file))
        # its ruleset: see spare
        started = idle.take(boot, body, cached, progress) if idle else None
        if idle and started:
            self._returns.watch(started[0], idle.channel, boot)
            return started
        rules = ruleset(boot)  # built here: see there
        mark("ruleset-built")
        try:
            return self._fork_direct(boot, rules, progress, cached)
        finally:
            if isinstance(rules, Ruleset):
                rules.close()  # ours; the worker enforces its own copy

    def _fork_direct(self, boot: Bootstrap, rules: Ruleset | str | None,
                     progress: int | None, cached: int | None = None) -> tuple[int, int, int]:
        """A worker forked for ``boot`` now, with its call ``progress`` page and ``cached``,
        the fd of its plugin's code (``code_store``: the one the child keeps). No return
        channel: the code comes back from workers that were the spare (a restart's,
        usually), sent over the spare's own channel; a channel for every fork (most of a
        cold start's workers are forked directly) cost each worker about 0.13 MiB of memory
        here (the fork server's allocations between forks, copied on write), for the first
        restart of each plugin only."""
        kept = tuple(fd for fd in (progress, cached) if fd is not None)
        return self._fork_child(
            lambda: run_worker(boot, rules, cached=cached, progress=progress), keep=kept)

    def _fresh(self, boot: Bootstrap, progress: int | None) -> tuple[int, int, int]:
        """A worker in a fresh interpreter, which reads ``boot`` from a pipe and is given
        its call ``progress`` page."""
        read_fd, write_fd = os.pipe()
        try:
            started = self._fork_child(lambda: _exec_worker(read_fd, progress),
                                       close=(write_fd,),
                                       keep=() if progress is None else (progress,))
        except OSError:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        with contextlib.suppress(OSError):  # room for the whole record: never blocks
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, MAX_BOOTSTRAP_BYTES)
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(boot.pack())
        except BrokenPipeError:
            pass  # it died at once: its Exited follows
        return started

    def _until_spare(self) -> float | None:
        """How long the loop may wait for an event before the next spare is due (ms)."""
        if self._spare_due is None:
            return None
        return max(0.0, (self._spare_due - time.monotonic()) * 1000)

    def _spare_when_due(self) -> None:
        """Fork the next spare if its time has come."""
        if self._spare_due is not None and time.monotonic() >= self._spare_due:
            self._spare_due = None
            self._spare = self._fork_spare()

    def _fork_spare(self) -> Spare | None:
        """The next spare (see ``spare``); None if it cannot be made now, which fails no
        spawn: the next fork-method spawn forks a worker of its own, then tries again."""
        server, kind = os.getpid(), self._kind
        try:
            ours, its = spare.channel()
            try:
                pid, stdout, stderr = self._fork_child(
                    lambda: spare.serve(its, server, kind.own_network), close=(ours.fileno(),))
            except OSError:
                ours.close()
                raise
            finally:
                its.close()
        except OSError as exc:
            print(f"fork server: no spare worker: {exc}", file=sys.stderr)
            return None
        idle = Spare(pid, ours, stdout, stderr, kind)
        try:
            idle.prepare()  # its ruleset, once its pid is known
        except OSError as exc:
            idle.discard()
            print(f"fork server: no spare worker: its ruleset: {exc}", file=sys.stderr)
            return None
        return idle

    def _fork_child(self, become: Callable[[], int], close: tuple[int, ...] = (),
                    keep: tuple[int, ...] = ()) -> tuple[int, int, int]:
        """Fork a child with stdout and stderr pipes of its own that leaves this loop and
        runs ``become`` (its result: the exit code), ``close`` closed, and of the fork
        server's own fds only ``keep`` kept; its pid and the read ends of its pipes (the
        caller's to close)."""
        out = os.pipe2(os.O_CLOEXEC)
        try:
            err = os.pipe2(os.O_CLOEXEC)
        except OSError:  # out of fds, say: the first pair must not leak
            for fd in out:
                os.close(fd)
            raise
        output = (*out, *err)  # out r, w; err r, w
        sys.stdout.flush()
        sys.stderr.flush()  # nothing of ours is written twice
        try:
            pid = os.fork()
        except OSError:
            for fd in output:
                os.close(fd)
            raise
        if pid == 0:
            self._become(become, output, close, keep)
        os.close(output[1])
        os.close(output[3])
        return pid, output[0], output[2]

    def _become(self, become: Callable[[], int], output: tuple[int, int, int, int],
                close: tuple[int, ...], keep: tuple[int, ...] = ()) -> NoReturn:
        """In the child: leave the fork server's loop for good, then run ``become``."""
        code = _EXIT_SETUP_FAILED
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            os.dup2(output[1], 1)
            os.dup2(output[3], 2)  # into the supervisor's log from here on
            for fd in (*self._own_fds(), *output, *close):
                if fd not in keep:
                    os.close(fd)
            self._codes.forget()  # their fds are closed (or the one kept, now the child's)
            os.setsid()  # its own session and process group: a stop reaches its children
            code = become()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    def _own_fds(self) -> tuple[int, ...]:
        """The fork server's file descriptors, which none of its children keeps (but a
        worker its own plugin's code: see ``_fork_direct``)."""
        spare_fds = self._spare.fds() if self._spare else ()
        return (self.control.fileno(), self._wake_read, self._wake_write, self.supervisor_fd,
                *spare_fds, *self._returns.fds(), *self._codes.fds(), *self._progress.values(),
                *timeline.own_fd())

    def _signal(self, pid: int, signum: int) -> None:
        """``signum`` to a live worker's whole tree and its group; others are ignored."""
        if pid not in self.workers:
            return
        signal_descendants(pid, signum)
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:  # no group yet (before its setsid): the worker itself,
            with contextlib.suppress(OSError):  # once (a stop's SIGTERM must not come twice)
                os.kill(pid, signum)  # an unreaped child of ours: the pid is not reused
        except OSError:
            pass
        _signal_all(cgroups.members(self.workers[pid]), signum)

    def _reap(self) -> None:
        """Reap every ended child; for a worker, kill its leftovers first and report it."""
        while True:
            try:  # WNOWAIT: the zombie keeps its pid (and group) from being reused...
                ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                ended = None
            if ended is None:
                break
            pid = ended.si_pid
            mark("exit-seen")
            groups = self.workers.pop(pid, None)
            if groups is not None:  # ...while its group is killed
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            if groups == ():  # told now: its restart need not wait for the reaping
                self._exited(pid, ended)
            if groups:
                _empty(groups)
            os.waitpid(pid, 0)
            self._returns.ended(pid)
            if groups:  # with cgroups, told once they are empty: the supervisor removes them
                self._exited(pid, ended)
            elif groups is None and self._spare and pid == self._spare.pid:
                self._spare.close()  # it died idle: the next fork-method spawn makes another
                self._spare = None
        self._sweep()

    def _exited(self, pid: int, ended: os.waitid_result) -> None:
        """Report the end of worker ``pid``: its exit code as ``waitstatus_to_exitcode``
        says it (read from the zombie's siginfo: it may not be reaped yet), and the last
        call it began (from its page: the worker runs no more, though a process of its
        plugin's that kept the mapping might still write there, as the plugin could have;
        unreadable: not known)."""
        code = ended.si_status if ended.si_code == os.CLD_EXITED else -ended.si_status
        page = self._progress.pop(pid, None)
        began = Exited.NOT_KNOWN
        if page is not None:
            with contextlib.suppress(OSError):
                began = call_progress.read(page)
            os.close(page)
        self._send(Exited(pid, code, began))
        mark("exited-sent")

    def _sweep(self) -> None:
        """Kill every adopted process (with its tree) whose worker is no longer running; not
        the spare, which is no worker yet."""
        idle = self._spare.pid if self._spare else None
        for child in children(os.getpid()):
            if child != idle and child not in self.workers and owner_of(child) not in self.workers:
                signal_descendants(child, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGKILL)

    def _kill_everything(self, patience: float = 5.0) -> None:
        """Before exiting: SIGKILL every process below this one, and reap them all.

        Rounds, since a process forked while its parent is being killed is adopted here
        only afterwards; bounded, since reaping must not wait on anything forever.
        """
        groups = [group for worker in self.workers.values() for group in worker]
        _signal_all(cgroups.members(tuple(groups)), signal.SIGKILL)
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if not signal_descendants(os.getpid(), signal.SIGKILL):
                break
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            time.sleep(0.002)
        _empty(tuple(groups))  # the supervisor may be gone: its groups go with us
        cgroups.remove_all(groups)
        if _gone(self.supervisor_fd):  # else they are the supervisor's, which makes more
            cgroups.remove_all(sorted({os.path.dirname(group) for group in groups}))


def _exec_worker(bootstrap_fd: int, progress: int | None) -> NoReturn:
    """In the child: become a fresh interpreter that reads its bootstrap from
    ``bootstrap_fd`` and writes its call ``progress`` page (if it has one)."""
    os.set_inheritable(bootstrap_fd, True)
    page_args: list[str] = []
    if progress is not None:
        os.set_inheritable(progress, True)
        page_args = ["--progress-fd", str(progress)]
    os.execv(sys.executable, [sys.executable, "-m", "spec_kit_worker",
                              "--bootstrap-fd", str(bootstrap_fd), *page_args])


def _new_page() -> int | None:
    """A new worker's call progress page; None if the kernel will not make one (out of
    fds, say): the worker starts all the same, and its death fails all its calls."""
    try:
        return call_progress.create()
    except OSError as exc:
        print(f"fork server: no call progress page: {exc}", file=sys.stderr)
        return None


def _gone(pidfd: int) -> bool:
    """Whether the process behind ``pidfd`` has ended (its pidfd is readable)."""
    return bool(select.select([pidfd], [], [], 0)[0])


def _signal_all(pids: set[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def _empty(groups: tuple[str, ...], patience: float = 0.5) -> None:
    """SIGKILL every member of an ended worker's cgroups until none is left (bounded)."""
    deadline = time.monotonic() + patience
    while (left := cgroups.members(groups)) and time.monotonic() < deadline:
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.001)


def main() -> int:
    parser = argparse.ArgumentParser(prog="spec_kit_worker.birth.forkserver")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--supervisor-pid", type=int, required=True)
    args = parser.parse_args()
    control = socket.socket(fileno=args.control_fd)
    interpreter_paths()  # once here, not in every worker (see there)
    configure_logging()  # for the workers: stderr is theirs once forked
    server = ForkServer(control, args.supervisor_pid)
    gc.freeze()  # all made so far stays out of the children's collections: fewer copied pages
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
