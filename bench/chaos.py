"""Chaos benchmark (issue 16): random SIGKILLs of plugin workers while callers keep calling.

What: a supervisor (``spec-kit-runtime run``, tied to this process) serves ``--plugins``
small echo plugins (``command:pN:echo``) with a restart policy that never gives up.
``--threads`` caller threads, each on its own connection, send echo calls to random plugins
without pause, each with a deadline of ``--timeout`` seconds, while this process SIGKILLs
the worker of a random active plugin every 100-300 ms for ``--seconds``. Then it checks
that every plugin comes back (active, and answering an echo).

Why: a crash should cost only the calls that were in the worker when it died. The target
(issue 16): errors only for calls in flight at a kill, no hang, every plugin back after
the kills stop. A call that arrives while its plugin restarts waits for it (README, "Calls
wait for ready"); before that it failed at once with ``PluginNotActiveError``. So does a
call the killed worker had not begun, sent to it before or after the kill: it waits for the
replacement (``loop/call_progress.py``); before that it failed with the death.

How each call is judged, from its own clock readings (CLOCK_MONOTONIC, shared by all
processes, so the supervisor's ``last_exit_at`` compares with ours):
* **in flight at a kill**: it started (just before its send) at or before a kill of its
  plugin's worker and ended after it. The kill is timed just before its signal (``at``)
  and just after (``signalled``), around the one system call: the caller threads may take
  the GIL in between, and a call made then may reach the worker before the signal does.
  Such a call is shown apart, and counts as not in flight (an error there may be a call
  the worker had begun, or may not be);
* otherwise, after the latest earlier kill of its plugin, it was sent either before the
  supervisor noticed the death (``last_exit_at`` in status), or while the plugin restarted
  (until its ``plugin_active`` event reached us), or while the plugin was active again;
* a **hang**: no return within its deadline plus ``--slack`` (whatever it returned then),
  or a thread still in its call when the run is over.

Run: ``python bench/chaos.py [--seconds 20] [--plugins 10] [--threads 4]``; bench/suite.py
runs a shorter one.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from restart import Traced, percentile, print_steps, steps_after_kills
from spec_kit_contracts import Command

from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.client.launcher import launch_supervisor
from spec_kit_runtime.errors import SupervisorUnavailable
from spec_kit_runtime.linux.child_wait import wait_exit
from spec_kit_runtime.logs.timeline import VARIABLE as TIMELINE_VARIABLE
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.protocol import ControlOp
from spec_kit_runtime.wire.status import PluginReport, Status, from_data

PLUGIN_SOURCE = textwrap.dedent('''
    """Answers ``command:ID:echo`` with its arguments, at once."""
    from spec_kit_contracts import IPluginMetadata, PluginBase


    class EchoPlugin(PluginBase):
        def _create_metadata(self):
            return IPluginMetadata(name="echo", version="1.0.0", author="bench",
                                   description="echo")

        def get_config_schema(self):
            return {"type": "object"}

        def register_services(self, registry):
            registry.register_command(f"{registry.plugin_id}:echo", self.echo)

        def handle_message(self, message):
            return None

        def echo(self, arguments, options):
            return {"echo": arguments}
''')

# Restarts that never give up during a run, with little backoff: each plugin is killed
# every two seconds or so, and a give-up would end the chaos for it.
RESTART = {"max_restarts": 1_000_000, "period": 3600.0, "backoff_initial": 0.01,
           "backoff_factor": 2.0, "backoff_max": 0.05, "stable_after": 0.05}

IN_FLIGHT = "in flight at a kill"
BEFORE_NOTICE = "after a kill, before the supervisor noticed the death"
RESTARTING = "while its plugin restarted"
ACTIVE = "while its plugin was active"
DURING_KILL = "while the kill's signal was being sent"
WINDOWS = (IN_FLIGHT, DURING_KILL, BEFORE_NOTICE, RESTARTING, ACTIVE)

GONE = (PluginState.ERROR, PluginState.STOPPED, PluginState.FAILED)  # no restart coming

OK = "reply"
UNFINISHED = "unfinished"  # the thread was still in this call when the run ended


@dataclass(frozen=True)
class Settings:
    seconds: float = 20.0
    plugins: int = 10
    threads: int = 4
    timeout: float = 2.0  # each call's deadline
    slack: float = 1.0  # past the deadline, a call that has not returned hangs
    kill_every: tuple[float, float] = (0.1, 0.3)  # seconds between kills, uniform
    recovery: float = 10.0  # how long plugins may take to come back after the last kill


@dataclass(frozen=True)
class CallRecord:
    plugin: str
    start: float
    end: float
    outcome: str  # OK, an error's type name, "wrong reply" or UNFINISHED
    detail: str = ""  # the error's message


@dataclass(frozen=True)
class Kill:
    plugin: str
    pid: int
    at: float  # just before the kill (a call in flight then was in flight at the kill)
    signalled: float  # just after (a call made from then on cannot reach the killed worker)


@dataclass
class Timeline:
    """When each plugin's workers were killed, their deaths noticed, and it was active again."""

    kills: dict[str, list[float]] = field(default_factory=dict)
    signalled: dict[str, list[float]] = field(default_factory=dict)  # Kill.signalled
    noticed: dict[str, set[float]] = field(default_factory=dict)  # last_exit_at values seen
    active: dict[str, list[float]] = field(default_factory=dict)  # plugin_active arrivals

    def add_kill(self, kill: Kill) -> None:
        self.kills.setdefault(kill.plugin, []).append(kill.at)
        self.signalled.setdefault(kill.plugin, []).append(kill.signalled)

    def add_status(self, status: Status) -> None:
        for plugin in status.plugins:
            if plugin.last_exit_at is not None:
                self.noticed.setdefault(plugin.id, set()).add(plugin.last_exit_at)

    def window(self, call: CallRecord) -> str:
        """Which of WINDOWS the call falls in (see the module's docstring)."""
        kills = self.kills.get(call.plugin, [])
        after_start = bisect.bisect_left(kills, call.start)
        if after_start < len(kills) and kills[after_start] <= call.end:
            return IN_FLIGHT
        if after_start == 0:
            return ACTIVE  # no kill of this plugin before it
        killed = kills[after_start - 1]
        if call.start <= self.signalled[call.plugin][after_start - 1]:
            return DURING_KILL
        if call.start < self._first_after(sorted(self.noticed.get(call.plugin, ())), killed):
            return BEFORE_NOTICE
        if call.start < self._first_after(self.active.get(call.plugin, []), killed):
            return RESTARTING
        return ACTIVE

    def restart_times(self) -> list[float]:
        """Seconds from each kill to its plugin's next ``plugin_active`` event here."""
        return self._after_kills(self.active)

    def answer_times(self, calls: list[CallRecord]) -> list[float]:
        """Seconds from each kill to the first reply to a call of its plugin made after it
        (and before the plugin's next kill): the replacement answering, as its callers see
        it under this load."""
        return [answered - killed for killed, answered in self.first_replies(calls)]

    def first_replies(self, calls: list[CallRecord]) -> list[tuple[float, float]]:
        """Each kill's moment (just before its signal, ``Kill.at``) and when the first reply
        to a call of its plugin made after the signal (``Kill.signalled``: the killed
        worker answers none of those) came back; kills with no such reply are left out."""
        made: dict[str, list[tuple[float, float]]] = {}  # plugin → (start, end) of replies
        for call in calls:
            if call.outcome == OK:
                made.setdefault(call.plugin, []).append((call.start, call.end))
        taken = []
        for plugin, kills in self.kills.items():
            replies = sorted(made.get(plugin, []))
            sent = self.signalled[plugin]
            for killed, signalled, until in zip(kills, sent, [*kills[1:], math.inf],
                                                strict=True):
                first = bisect.bisect_right(replies, (signalled, math.inf))
                ends = [end for start, end in replies[first:] if start < until]
                if ends:
                    taken.append((killed, min(ends)))
        return taken

    def notice_times(self) -> list[float]:
        """Seconds from each kill to the supervisor's noticing the death (last_exit_at)."""
        return self._after_kills({plugin: sorted(times)
                                  for plugin, times in self.noticed.items()})

    def _after_kills(self, moments: dict[str, list[float]]) -> list[float]:
        taken = []
        for plugin, kills in self.kills.items():
            for killed in kills:
                then = self._first_after(moments.get(plugin, []), killed)
                if not math.isinf(then):
                    taken.append(then - killed)
        return taken

    def all_back_at(self) -> float:
        """When the last plugin killed was active again after its last kill (inf: never)."""
        return max((self._first_after(self.active.get(plugin, []), kills[-1])
                    for plugin, kills in self.kills.items()), default=0.0)

    @staticmethod
    def _first_after(times: list[float], moment: float) -> float:
        index = bisect.bisect_left(times, moment)
        return times[index] if index < len(times) else float("inf")


@dataclass(frozen=True)
class Result:
    settings: Settings
    calls: list[CallRecord]
    kills: list[Kill]
    timeline: Timeline
    restarts: int  # counted by the supervisor
    back: int  # plugins active and answering after the kills
    servers: frozenset[int]  # the supervisor's pid and its fork server's
    back_after: float | None  # seconds from the last kill to all active again; None: not
    # all back (not active within ``recovery``, or not answering)

    @property
    def replies(self) -> int:
        return sum(call.outcome == OK for call in self.calls)

    def errors(self) -> Counter[tuple[str, str]]:
        """(kind, window) → how many calls failed so."""
        return Counter((call.outcome, self.timeline.window(call)) for call in self.calls
                       if call.outcome != OK)

    def hangs(self) -> list[CallRecord]:
        limit = self.settings.timeout + self.settings.slack
        return [call for call in self.calls
                if call.outcome == UNFINISHED or call.end - call.start > limit]


# -- the supervisor and its plugins ---------------------------------------------------------


def write_plugins(root: Path, count: int) -> Path:
    """``count`` echo plugins p0 … pN-1 under ``root / "plugins"``."""
    plugins = root / "plugins"
    for index in range(count):
        folder = plugins / f"p{index}"
        folder.mkdir(parents=True)
        (folder / "echo_plugin.py").write_text(PLUGIN_SOURCE)
        (folder / "plugin.json").write_text(json.dumps({
            "id": folder.name, "name": folder.name, "version": "1.0.0",
            "entry_point": "EchoPlugin", "file": "echo_plugin.py", "sandbox": False}))
    return plugins


def write_config(root: Path, plugins: Path) -> Path:
    config = root / "runtime.json"
    config.write_text(json.dumps({"runtime": {
        "plugin_paths": [str(plugins)], "data_dir": str(root / "data"),
        "log_level": "WARNING", "restart": RESTART}}))
    return config


@contextlib.contextmanager
def supervisor(root: Path, plugins: int, log_file: Path | None) -> Iterator[Path]:
    """A supervisor running ``plugins`` echo plugins, all active; yields its runtime
    directory. It is tied to this process (it exits if we die, even by SIGKILL) and stopped
    on the way out, its workers and fork server with it, whatever happened meanwhile."""
    config = write_config(root, write_plugins(root, plugins))
    rundir = root / "run"
    log_file = log_file or root / "supervisor.log"
    log_file.touch()  # the launcher appends to it, it does not create it
    process = launch_supervisor(rundir, config, log_file=log_file)
    try:
        with contextlib.closing(SupervisorClient.find(rundir, control=True)) as control:
            if wait_all_back(control, plugins, 30.0) is None:
                raise RuntimeError(f"the plugins did not all start; see {log_file}")
        yield rundir
    finally:
        stop_supervisor(process)


def stop_supervisor(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (an orderly shutdown: workers, then the fork server), SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
    try:
        wait_exit(process, 30.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def read_status(control: SupervisorClient) -> Status:
    return from_data(Status, control.control(ControlOp.STATUS, timeout=10.0))


def is_up(plugin: PluginReport) -> bool:
    return plugin.state == PluginState.ACTIVE and plugin.pid is not None


def wait_all_back(control: SupervisorClient, count: int, timeout: float,
                  timeline: Timeline | None = None) -> float | None:
    """Seconds until all ``count`` plugins are active (polled every 20 ms), or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status = read_status(control)
        if timeline is not None:
            timeline.add_status(status)
        if len(status.plugins) == count and all(is_up(p) for p in status.plugins):
            return time.monotonic() - started
        if any(p.state in GONE for p in status.plugins):
            return None  # none of them comes back on its own
        time.sleep(0.02)
    return None


def answering(rundir: Path, plugins: list[str], timeout: float) -> int:
    """How many of ``plugins`` answer an echo correctly."""
    with contextlib.closing(SupervisorClient.find(rundir)) as client:
        return sum(call(client, plugin, 0, timeout)[0] == OK for plugin in plugins)


# -- the callers, the killer and the event follower -----------------------------------------


def call(client: SupervisorClient, plugin: str, number: int, timeout: float
         ) -> tuple[str, str]:
    """One echo call: OK, the error's type name, or "wrong reply"; and the error's message."""
    try:
        reply = client.send(Command(command_name=f"{plugin}:echo", arguments=[str(number)]),
                            timeout=timeout)
    except Exception as exc:  # every kind is a figure of the benchmark
        return type(exc).__name__, str(exc)
    return (OK, "") if reply == {"echo": [str(number)]} else ("wrong reply", repr(reply))


class Caller(threading.Thread):
    """Calls random plugins on a connection of its own until ``stop`` is set."""

    def __init__(self, client: SupervisorClient, plugins: list[str], timeout: float,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)  # a thread stuck in a call must not keep us alive
        self.client, self.plugins, self.timeout, self.stop = client, plugins, timeout, stop
        self.records: list[CallRecord] = []
        self.current: tuple[str, float] | None = None  # the call under way
        self.rng = random.Random()

    def run(self) -> None:
        try:
            number = 0
            while not self.stop.is_set():
                plugin = self.rng.choice(self.plugins)
                number += 1
                self.current = (plugin, time.monotonic())
                outcome, detail = call(self.client, plugin, number, self.timeout)
                self.records.append(CallRecord(plugin, self.current[1], time.monotonic(),
                                               outcome, detail))
                self.current = None
        finally:
            self.client.close()

    def unfinished(self) -> CallRecord | None:
        """The call this thread is still in, if it is alive."""
        current = self.current
        if not self.is_alive() or current is None:
            return None
        return CallRecord(current[0], current[1], time.monotonic(), UNFINISHED)


def follow_activations(rundir: Path, timeline: Timeline) -> threading.Thread:
    """Record when each ``plugin_active`` event reaches us, until the supervisor exits."""
    client = SupervisorClient.find(rundir)
    events = client.follow("event:system:plugin_active")  # subscribed from now on

    def follow() -> None:
        try:
            for event in events:
                plugin = event.event_data.get("plugin")
                if isinstance(plugin, str):
                    timeline.active.setdefault(plugin, []).append(time.monotonic())
        except SupervisorUnavailable:
            pass  # the run is over
        finally:
            client.close()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread


def kill_randomly(control: SupervisorClient, settings: Settings, timeline: Timeline,
                  rng: random.Random) -> list[Kill]:
    """SIGKILL the worker of a random active plugin every ``kill_every`` seconds, for
    ``settings.seconds``; the kills, each timed just before and just after its signal."""
    kills: list[Kill] = []
    end = time.monotonic() + settings.seconds
    while (remaining := end - time.monotonic()) > 0:
        time.sleep(min(remaining, rng.uniform(*settings.kill_every)))
        if time.monotonic() >= end:
            break
        status = read_status(control)
        timeline.add_status(status)
        up = [plugin for plugin in status.plugins if is_up(plugin)]
        if not up:
            continue
        target = rng.choice(up)
        assert target.pid is not None
        timed = kill_worker(target.pid, status.supervisor.forkserver_pid)
        if timed is not None:
            kill = Kill(target.id, target.pid, *timed)
            kills.append(kill)
            timeline.add_kill(kill)
    return kills


def kill_worker(pid: int, forkserver_pid: int | None) -> tuple[float, float] | None:
    """SIGKILL ``pid`` if it is still a worker (a child of the fork server): through a
    pidfd, so that a pid reused meanwhile by another process is never signalled. The
    clock just before and just after the signal (``Kill.at``, ``Kill.signalled``), read
    around the one system call, so that the caller threads have as little time as can be
    to make calls in between; None when it was not killed."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None  # it died meanwhile: not our kill
    try:
        with open(f"/proc/{pid}/stat") as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        if parent != forkserver_pid:
            return None
        before = time.monotonic()
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return before, time.monotonic()
    except (ProcessLookupError, FileNotFoundError):
        return None
    finally:
        os.close(pidfd)


# -- the run ----------------------------------------------------------------------------------


def measure(settings: Settings, log_file: Path | None = None) -> Result:
    """One chaos run (see the module's docstring)."""
    root = Path(tempfile.mkdtemp(prefix="skr-chaos-"))
    names = [f"p{index}" for index in range(settings.plugins)]
    timeline = Timeline()
    stop = threading.Event()
    try:
        with contextlib.ExitStack() as stack:
            rundir = stack.enter_context(supervisor(root, settings.plugins, log_file))
            control = stack.enter_context(contextlib.closing(
                SupervisorClient.find(rundir, control=True)))
            stack.callback(stop.set)  # the callers stop before the supervisor does
            status = read_status(control)
            restarts_before = total_restarts(status)
            servers = frozenset({status.supervisor.pid, status.supervisor.forkserver_pid or 0})
            follower = follow_activations(rundir, timeline)
            callers = [Caller(SupervisorClient.find(rundir), names, settings.timeout, stop)
                       for _ in range(settings.threads)]
            for caller in callers:
                caller.start()
            kills = kill_randomly(control, settings, timeline, random.Random())
            stop.set()
            calls = finish(callers, settings)
            all_active = wait_all_back(control, settings.plugins, settings.recovery, timeline)
            back = answering(rundir, names, settings.timeout) if all_active is not None else 0
            restarts = total_restarts(read_status(control)) - restarts_before
        follower.join(5.0)  # it ends with the supervisor, every plugin_active received
        back_after = timeline.all_back_at() - kills[-1].at if kills else 0.0
        return Result(settings, calls, kills, timeline, restarts, back, servers,
                      back_after if back == settings.plugins else None)
    finally:
        stop.set()
        shutil.rmtree(root, ignore_errors=True)


def finish(callers: list[Caller], settings: Settings) -> list[CallRecord]:
    """Every caller's calls, once each has ended its last call; a caller still in its call
    after the longest a call may take (its deadline, the client's grace past it, and the
    slack) adds that call as UNFINISHED."""
    patience = time.monotonic() + settings.timeout + 5.0 + settings.slack
    calls: list[CallRecord] = []
    for caller in callers:
        caller.join(max(0.0, patience - time.monotonic()))
        calls += caller.records
        stuck = caller.unfinished()
        if stuck is not None:
            calls.append(stuck)
    return calls


def total_restarts(status: Status) -> int:
    return sum(plugin.restarts for plugin in status.plugins)


# -- the report -------------------------------------------------------------------------------


def error_kinds(result: Result) -> dict[str, tuple[int, int]]:
    """Error kind → (in flight at a kill, not in flight), most frequent first."""
    kinds: dict[str, list[int]] = {}
    for (kind, window), count in result.errors().most_common():
        kinds.setdefault(kind, [0, 0])[window != IN_FLIGHT] += count
    return {kind: (split[0], split[1]) for kind, split in kinds.items()}


def median_p95(taken: list[float]) -> str:
    """Median / p95 of seconds, in ms."""
    if not taken:
        return "-"
    return f"{statistics.median(taken) * 1000:.1f} / {percentile(taken, 0.95) * 1000:.1f}"


def report(result: Result) -> list[str]:
    """The run's figures, one a line: a label, the value under it, a note."""
    settings = result.settings
    calls, errors = len(result.calls), result.errors()
    in_flight = sum(n for (_, window), n in errors.items() if window == IN_FLIGHT)
    low, high = settings.kill_every
    rows = [
        ("kills", f"{len(result.kills)}", f"restarts counted by the supervisor: "
                                          f"{result.restarts}"),
        ("calls", f"{calls}", f"{calls / settings.seconds:.0f}/s"),
        ("replies", f"{result.replies}", ""),
        ("errors, in flight at a kill / not in flight",
         f"{in_flight} / {sum(errors.values()) - in_flight}", "target: 0 not in flight"),
    ]
    rows += [(f"  {kind}", f"{both[0]} / {both[1]}", "")
             for kind, both in error_kinds(result).items()]
    rows.append(("not in flight, by when they were sent:", "", ""))
    rows += [(f"  {window}", f"{sum(n for (_, w), n in errors.items() if w == window)}", "")
             for window in WINDOWS[1:]]
    if result.back_after is None:
        back = "NOT ALL BACK"
    elif math.isinf(result.back_after):
        back = "(a plugin_active event was not received)"
    else:
        back = f"all active {result.back_after:.3f} s after the last kill"
    rows += [
        (f"hangs (no return within timeout + {settings.slack:g} s)", f"{len(result.hangs())}",
         "target: 0"),
        ("plugins back (active and answering)", f"{result.back}/{settings.plugins}", back),
        ("kill -> death noticed (last_exit_at), median / p95 (ms)",
         median_p95(result.timeline.notice_times()), ""),
        ("kill -> plugin_active here, median / p95 (ms)",
         median_p95(result.timeline.restart_times()), "under this load"),
        ("kill -> first reply to a call made after it, median / p95 (ms)",
         median_p95(result.timeline.answer_times(result.calls)), "target <= 10 / 20 ms"),
    ]
    lines = [f"chaos: {settings.plugins} plugins, {settings.threads} caller threads, "
             f"{settings.seconds:g} s, a SIGKILL every {low * 1000:.0f}-{high * 1000:.0f} ms, "
             f"call timeout {settings.timeout:g} s, {os.cpu_count()} CPUs"]
    lines += [f"{label:<56}{value:>14}  {note}".rstrip() for label, value, note in rows]
    return lines


def messages(result: Result, most: int = 3) -> list[str]:
    """The commonest messages of each error kind in each window, plugin ids as pN."""
    seen: Counter[tuple[str, str, str]] = Counter(
        (call.outcome, result.timeline.window(call), re.sub(r"\bp\d+\b", "pN", call.detail))
        for call in result.calls if call.outcome != OK)
    lines = ["error messages, by kind and window:"]
    for kind, window in sorted({(kind, window) for kind, window, _ in seen}):
        lines.append(f"  {kind}, {window}:")
        ranked = sorted(((n, text) for (k, w, text), n in seen.items()
                         if (k, w) == (kind, window)), reverse=True)
        lines += [f"    {n:>6}  {text}" for n, text in ranked[:most]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="of kills (20)")
    parser.add_argument("--plugins", type=int, default=10, help="(10)")
    parser.add_argument("--threads", type=int, default=4, help="caller threads (4)")
    parser.add_argument("--timeout", type=float, default=2.0, help="each call's deadline (2)")
    parser.add_argument("--log-file", type=Path,
                        help="keep the supervisor's log there (default: discarded)")
    parser.add_argument("--messages", action="store_true",
                        help="also print the errors' messages, by kind and window")
    parser.add_argument("--timeline", action="store_true",
                        help="also print where each restart's time goes (bench/restart.py)")
    args = parser.parse_args()
    marks = Path(tempfile.mkdtemp()) if args.timeline else None
    if marks is not None:  # read by each process of the supervisor at its start
        os.environ[TIMELINE_VARIABLE] = str(marks)
    # SIGTERM ends the run like Ctrl-C: through the cleanup, the supervisor stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = measure(Settings(seconds=args.seconds, plugins=args.plugins,
                                  threads=args.threads, timeout=args.timeout), args.log_file)
    except KeyboardInterrupt:
        sys.exit("interrupted (the supervisor and its workers are stopped)")
    print("\n".join(report(result)))
    if args.messages:
        print("\n".join(messages(result)))
    for hang in result.hangs()[:10]:
        print(f"  hang: {hang.plugin} {hang.outcome} after {hang.end - hang.start:.2f} s",
              file=sys.stderr)
    if marks is not None:
        print_steps(steps_after_kills(marks, restart_paths(result, marks)))
        shutil.rmtree(marks)


def restart_paths(result: Result, marks: Path) -> list[Traced]:
    """Each kill's restart path, for the timeline: from the kill to the first reply of its
    replacement, through the supervisor, the fork server and the worker whose bootstrap
    came first in that window (kills are 100 ms or more apart, restarts about 10 ms)."""
    starts = sorted((int(at), int(path.stem)) for path in marks.glob("*.marks")
                    for at, step in (line.split(" ", 1) for line in path.read_text().split("\n")
                                     if line) if step == "bootstrap")
    paths = []
    for killed, answered in result.timeline.first_replies(result.calls):
        window = (int(killed * 1e9), int(answered * 1e9))
        workers = [pid for at, pid in starts if window[0] <= at <= window[1]]
        if workers:
            paths.append(Traced(*window, frozenset({*result.servers, workers[0]})))
    return paths


if __name__ == "__main__":
    main()
