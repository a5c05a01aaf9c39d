"""The benchmark suite: one command, one table, the raw ZeroMQ baseline measured in the same run.

Run: ``python bench/suite.py`` (about two minutes on two cores; ``--quick`` for a smaller run).

* Routing, for 1, 10 and 50 plugins: pipelined throughput and one-at-a-time latency (p50,
  p99) through the supervisor, beside a raw Python broker doing the least a broker can
  (client → ROUTER → worker → ROUTER → client, one msgpack frame each way, the routing data
  decoded and re-encoded at the broker as ours does), with the ratio of the two; both
  running, measured in alternating rounds, each figure the median round.
* Restart: SIGKILL → the supervisor notices, and → the replacement answers (bench/restart.py).
* Chaos: random SIGKILLs of 10 plugins' workers under 4 caller threads (bench/chaos.py, a
  shorter run): calls, replies, errors in flight at a kill or not, hangs, plugins back.
* Cold start of 50 plugins by ``spec-kit-runtime run`` until all are active (it says
  READY=1, systemd's way), the median of several starts: one varies by a fifth here. The
  runtime's bytecode is written first (``compile_bytecode``), as installing a wheel does.
* 50 idle workers: memory per worker, supervisor CPU with the watchdog on (bench/idle.py).
* 200 plugins: all active, and the routed p50 against the 1-plugin figure.
* One-shot process, as Spec-Kit's CLI makes per command (bench/oneshot.py, fewer rounds):
  launch to exit, with a private supervisor and attached to a running one, beside 1.0.1
  in-process, measured in the same rounds.
"""

from __future__ import annotations

import argparse
import compileall
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import zmq
from chaos import Settings as ChaosSettings
from chaos import error_kinds, median_p95
from chaos import measure as measure_chaos
from idle import measure as measure_idle
from idle import plugin_folders
from oneshot import BASELINE
from oneshot import measure as measure_oneshot
from restart import measure as measure_restart
from restart import percentile
from spec_kit_contracts import Command

from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import ClientHello, ControlOp, Reply, Send
from spec_kit_runtime.wire.status import Status, from_data

WINDOW = 64  # requests in flight in the pipelined runs
SOURCES = Path(__file__).resolve().parent.parent


def compile_bytecode() -> None:
    """Write the runtime's own bytecode, as a wheel's install does (pip writes it for the
    dependencies anyway). An editable install where PYTHONDONTWRITEBYTECODE is set (as on
    the machine of RESULTS.md) compiles the runtime's 9,000 lines at every start instead:
    40-60 ms of a cold start here, in both the supervisor and the fork server."""
    for folder in ("src", "workers"):
        compileall.compile_dir(SOURCES / folder, quiet=1)


BROKER = textwrap.dedent("""
    import sys, msgpack, zmq
    ctx = zmq.Context()
    clients, workers = ctx.socket(zmq.ROUTER), ctx.socket(zmq.ROUTER)
    clients.bind(sys.argv[1]); workers.bind(sys.argv[2])
    count = int(sys.argv[3]); ids = {}
    while len(ids) < count:
        wid, hello = workers.recv_multipart(); ids[int(hello)] = wid
    print("ready", flush=True)
    poller = zmq.Poller()
    poller.register(clients, zmq.POLLIN)
    poller.register(workers, zmq.POLLIN)
    while True:
        for sock, _ in poller.poll():
            if sock is clients:
                cid_, frame = clients.recv_multipart()
                target, cid, body = msgpack.unpackb(frame)
                workers.send_multipart([ids[target], msgpack.packb([cid_, cid, body])])
            else:
                _, frame = workers.recv_multipart()
                client, cid, result = msgpack.unpackb(frame)
                clients.send_multipart([client, msgpack.packb([cid, result])])
""")

WORKER = textwrap.dedent("""
    import sys, msgpack, zmq
    sock = zmq.Context().socket(zmq.DEALER); sock.connect(sys.argv[1])
    sock.send(sys.argv[2].encode())
    while True:
        client, cid, body = msgpack.unpackb(sock.recv())
        sock.send(msgpack.packb([client, cid, {"pong": 1}]))
""")


class Raw:
    """The raw broker and its workers, each its own process, and a client socket."""

    def __init__(self, count: int, root: Path) -> None:
        clients, workers = f"ipc://{root}/raw-c.sock", f"ipc://{root}/raw-w.sock"
        self.processes = [subprocess.Popen([sys.executable, "-c", BROKER, clients, workers,
                                            str(count)], stdout=subprocess.PIPE, text=True)]
        self.processes += [subprocess.Popen([sys.executable, "-c", WORKER, workers, str(i)])
                           for i in range(count)]
        assert self.processes[0].stdout is not None
        assert self.processes[0].stdout.readline().strip() == "ready"
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.connect(clients)
        self.count = count
        self.body = msgpack.packb({"command_name": "ping"})

    def send(self, cid: int) -> None:
        self.sock.send(msgpack.packb([cid % self.count, cid, self.body]))

    def receive(self) -> None:
        msgpack.unpackb(self.sock.recv())

    def close(self) -> None:
        self.sock.close(0)
        self.context.term()
        for process in self.processes:
            process.kill()
            process.wait()


class Routed:
    """A private supervisor with ``count`` plugins, and a raw client socket to it."""

    def __init__(self, count: int, root: Path) -> None:
        folders = plugin_folders(count)
        self.root = folders
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(root / f"notify{count}.sock"))
            self.run = subprocess.Popen(
                [shutil.which("spec-kit-runtime", path=str(Path(sys.executable).parent))
                 or "spec-kit-runtime", "run", "--plugins", str(folders), "--runtime-dir",
                 str(root / f"rt{count}")], stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                env={**os.environ, "NOTIFY_SOCKET": notify.getsockname()})
            self.started = time.monotonic()
            self.cold_start = _wait_ready(notify, self.run) - self.started
        _check_active(root / f"rt{count}", count)
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.connect(f"ipc://{root}/rt{count}/clients.sock")
        self.sock.send(codec.encode(ClientHello((root / f"rt{count}" / "token").read_bytes())))
        self.sock.recv()
        self.count = count
        self.bodies = [codec.pack_message(Command(command_name=f"idle{i}:ping"))
                       for i in range(count)]

    def send(self, cid: int) -> None:
        target = cid % self.count
        self.sock.send(codec.encode(Send(cid + 1, f"command:idle{target}:ping", "", 0.0,
                                        self.bodies[target])))

    def receive(self) -> None:
        reply = codec.decode(self.sock.recv())
        assert isinstance(reply, Reply) and reply.ok, reply

    def close(self) -> None:
        self.sock.close(0)
        self.context.term()
        self.run.terminate()
        self.run.wait(60)
        shutil.rmtree(self.root, ignore_errors=True)


def cold_starts(count: int, root: Path, runs: int) -> list[float]:
    """Seconds from launch to all active, of ``runs`` supervisors started one after another
    with ``count`` plugins each (new copies each time: every plugin's first start)."""
    taken = []
    for run in range(runs):
        (root / f"cold{run}").mkdir()
        path = Routed(count, root / f"cold{run}")
        taken.append(path.cold_start)
        path.close()
    return taken


def _wait_ready(notify: socket.socket, run: subprocess.Popen[bytes]) -> float:
    """When the supervisor said READY=1 (systemd's protocol: every plugin has started),
    waited for without polling its status, which would take CPU from the start measured."""
    while True:
        assert run.poll() is None, "the supervisor exited"
        if select.select([notify], [], [], 1.0)[0] and b"READY=1" in notify.recv(4096):
            return time.monotonic()


def _check_active(runtime_dir: Path, count: int) -> None:
    client = SupervisorClient.find(runtime_dir, control=True)
    try:
        plugins = from_data(Status, client.control(ControlOp.STATUS, timeout=10.0)).plugins
    finally:
        client.close()
    assert len(plugins) == count and all(p.state == PluginState.ACTIVE for p in plugins), plugins


def throughput(path: Raw | Routed, total: int) -> float:
    """Requests per second with WINDOW in flight."""
    started = time.monotonic()
    for cid in range(min(WINDOW, total)):
        path.send(cid)
    for cid in range(WINDOW, total + WINDOW):
        path.receive()
        if cid < total:
            path.send(cid)
    return total / (time.monotonic() - started)


def latencies(path: Raw | Routed, total: int) -> list[float]:
    """Seconds per request, one at a time."""
    taken = []
    for cid in range(total):
        started = time.perf_counter()
        path.send(cid)
        path.receive()
        taken.append(time.perf_counter() - started)
    return taken


ROUNDS = 5  # raw and routed take turns this many times; each figure is the median round


def routing(count: int, root: Path, requests: int) -> dict[str, float]:
    """Throughput and latency of both paths, both running, measured in alternating rounds.

    On a shared two-core machine one run of either varies by half from one run to the
    next (where the scheduler puts five processes and their I/O threads); taking turns
    and the median of the rounds keeps the ratio about what it is, not about the noise.
    """
    paths: dict[str, Raw | Routed] = {}
    rps: dict[str, list[float]] = {"raw": [], "routed": []}
    taken: dict[str, list[float]] = {"raw": [], "routed": []}
    try:
        paths["raw"] = Raw(count, root)
        paths["routed"] = Routed(count, root)
        for path in paths.values():
            latencies(path, 200)  # warm up
        for _ in range(ROUNDS):
            for name, path in paths.items():
                rps[name].append(throughput(path, requests // ROUNDS))
                taken[name] += latencies(path, requests // 4 // ROUNDS)
    finally:
        for path in paths.values():
            path.close()
    routed = paths["routed"]
    assert isinstance(routed, Routed)
    figures = {"cold_start": routed.cold_start}
    for name in paths:
        figures[f"{name}_rps"] = statistics.median(rps[name])
        figures[f"{name}_p50"] = statistics.median(taken[name]) * 1e6
        figures[f"{name}_p99"] = percentile(taken[name], 0.99) * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests, no 200 plugins")
    args = parser.parse_args()
    requests = 4000 if args.quick else 20000
    root = Path(tempfile.mkdtemp(prefix="skr-bench-"))
    os.environ["XDG_DATA_HOME"] = str(root / "data")  # the plugins' data folders: not in ~
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, baseline: str = "", note: str = "") -> None:
        rows.append((name, value, baseline, note))
        print(f"  {name}: {value} {baseline} {note}", file=sys.stderr, flush=True)

    try:
        one: dict[str, float] = {}
        for count in (1, 10, 50):
            figures = routing(count, root, requests)
            one = one or figures
            row(f"throughput, {count} plugins (req/s)", f"{figures['routed_rps']:.0f}",
                f"{figures['raw_rps']:.0f}",
                f"{figures['routed_rps'] / figures['raw_rps']:.0%} of raw (target >= 80%)")
            row(f"latency p50, {count} plugins (us)", f"{figures['routed_p50']:.0f}",
                f"{figures['raw_p50']:.0f}",
                f"{figures['routed_p50'] / figures['raw_p50']:.2f}x raw (target <= 1.2x)")
            row(f"latency p99, {count} plugins (us)", f"{figures['routed_p99']:.0f}",
                f"{figures['raw_p99']:.0f}", "")
        compile_bytecode()
        starts = sorted(cold_starts(50, root, 3 if args.quick else 7))
        row(f"cold start, 50 plugins to all active, median of {len(starts)} (min-max) (ms)",
            f"{statistics.median(starts) * 1000:.0f} ({starts[0] * 1000:.0f}-"
            f"{starts[-1] * 1000:.0f})", "", "target <= 500 ms")
        restarts = measure_restart(10 if args.quick else 30)
        detected, answering = restarts.detected, restarts.answering
        row("SIGKILL -> death noticed, median / p95 (ms)",
            f"{statistics.median(detected) * 1000:.1f} / {percentile(detected, 0.95) * 1000:.1f}")
        row("SIGKILL -> replacement answering, median / p95 (ms)",
            f"{statistics.median(answering) * 1000:.1f} / "
            f"{percentile(answering, 0.95) * 1000:.1f}", "", "target <= 10 / 20 ms")
        chaos_rows(row, 4.0 if args.quick else 8.0)
        idle = measure_idle(50, 5.0 if args.quick else 10.0, watchdog_interval=1.0)
        row("memory per idle worker, USS / PSS (MiB)",
            f"{idle['uss_mib']:.2f} / {idle['pss_mib']:.2f}", "", "target <= 4 MiB")
        row("supervisor CPU, 50 idle workers, watchdog on (% of a core)",
            f"{idle['supervisor_cpu']:.2f}", "", "target <= 1 %")
        oneshot_rows(row, 3 if args.quick else 7)
        if not args.quick:
            many = routing_latency_only(200, root, requests // 8)
            row("200 plugins: cold start to all active (ms)", f"{many['cold_start'] * 1000:.0f}")
            row("200 plugins: latency p50 (us)", f"{many['routed_p50']:.0f}", "",
                f"{many['routed_p50'] / one['routed_p50']:.2f}x the 1-plugin p50 (target <= 1.5x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows)


def oneshot_rows(row: Callable[[str, str, str, str], None], rounds: int) -> None:
    """One-shot processes (bench/oneshot.py): medians / p90 over ``rounds``, 1.0.1 beside."""
    _, samples = measure_oneshot(rounds, names=("2.0 private", "2.0 attach", BASELINE))
    base = samples[BASELINE].wall

    def figure(wall: list[float]) -> str:
        return f"{statistics.median(wall) * 1000:.0f} / {percentile(wall, 0.9) * 1000:.0f}"

    for name, what in (("2.0 private", "private supervisor, no shutdown() (as the CLI)"),
                       ("2.0 attach", "attached to a running supervisor")):
        wall = samples[name].wall
        extra = (statistics.median(wall) - statistics.median(base)) * 1000
        row(f"one-shot process, {what}, median / p90 (ms)", figure(wall), figure(base),
            f"{extra:+.0f} ms vs 1.0.1 in-process" + (" (target <= +100 ms)"
                                                       if name == "2.0 private" else ""))


def chaos_rows(row: Callable[[str, str, str, str], None], seconds: float) -> None:
    """A chaos run (bench/chaos.py) of ``seconds``: its counts, errors, hangs, recovery."""
    result = measure_chaos(ChaosSettings(seconds=seconds))
    settings = result.settings
    kinds = error_kinds(result)
    in_flight = sum(both[0] for both in kinds.values())
    not_in_flight = sum(both[1] for both in kinds.values())
    where = f"chaos, {settings.plugins} plugins, {settings.threads} threads, {seconds:g} s"
    row(f"{where}: kills / calls / replies", f"{len(result.kills)} / {len(result.calls)} / "
        f"{result.replies}", "", "")
    row("chaos: errors, in flight at a kill / not in flight", f"{in_flight} / {not_in_flight}",
        "", "target: 0 not in flight")
    for kind, (kind_in_flight, kind_not) in kinds.items():
        row(f"chaos:   {kind}, in flight / not", f"{kind_in_flight} / {kind_not}", "", "")
    row("chaos: hangs", f"{len(result.hangs())}", "", "target: 0")
    row("chaos: plugins back after the kills (active and answering)",
        f"{result.back}/{settings.plugins}", "", "target: all")
    row("chaos: SIGKILL -> plugin_active under that load, median / p95 (ms)",
        median_p95(result.timeline.restart_times()), "", "")
    row("chaos: SIGKILL -> first reply to a call made after it, median / p95 (ms)",
        median_p95(result.timeline.answer_times(result.calls)), "", "target <= 10 / 20 ms")


def routing_latency_only(count: int, root: Path, requests: int) -> dict[str, float]:
    path = Routed(count, root)
    try:
        latencies(path, 200)
        taken = latencies(path, requests)
        return {"routed_p50": statistics.median(taken) * 1e6, "cold_start": path.cold_start}
    finally:
        path.close()


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("figure", "spec-kit-runtime", "baseline: raw ZeroMQ / 1.0.1", "")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
    print(f"spec-kit-runtime benchmarks, {os.cpu_count()} CPUs, one run")
    for line in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
