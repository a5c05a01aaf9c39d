"""Benchmark: the wall time of a one-shot process, as Spec-Kit's CLI makes one per command.

``specify-extended`` (specify-cli-extended 1.0) makes a ``PluginContainer()`` per command: a
fresh process imports the runtime, makes a container, discovers and loads one plugin,
activates it, sends one command and exits, without ``shutdown()``. Each variant is such a
process, timed from its launch to its exit. All are measured in the same run, in rounds,
taking turns (the order rotated each round), after one round not counted; each figure is
the median (and p90) over the rounds.

* ``2.0 private``: ``PluginContainer()`` starts a private supervisor, its fork server and
  one worker; no ``shutdown()``, as the CLI. After each round the benchmark waits until
  every process of that supervisor is gone (``teardown``: how long they outlive the caller).
* ``2.0 private, shutdown()``: the same, ending with ``container.shutdown()``.
* ``2.0 attach``: ``PluginContainer({"attach": True})`` to a ``spec-kit-runtime run``
  already serving the plugin (active): discover, send, exit.
* ``1.0.1``: the original spec-kit-runtime 1.0.1, in-process. Installed once by this
  script into ``bench/.cache/v101`` (``pip install --target``, outside the venv, so it
  cannot shadow ours) and put first on its PYTHONPATH.
* ``bare import``: ``python -c "import spec_kit_contracts"``.

The plugin is ``bench/fixtures/hello``, as ``specify-extended plugin new hello`` makes it
(a ``PluginBase`` registering ``hello:hello``; ``"sandbox": false``, so 1.0.1 loads it
without its Python sandbox too), less the manifest's ``dependencies``: a pip requirement
there, which 2.0 reads as plugin ids and refuses. The command goes through
``container.message_bus.send`` in 1.0.1, as the CLI sends it, and through
``send_message("hello", ...)`` in 2.0, whose container has no ``message_bus`` yet.

Bytecode: by default every variant reads and writes a bytecode cache of its own
(``PYTHONPYCACHEPREFIX=bench/.cache/pycache``, filled by the first round), as after a pip
install of a wheel. ``--no-bytecode`` runs as this checkout does with
PYTHONDONTWRITEBYTECODE: our sources, installed editable, are compiled at every start (1.0.1
and the contracts have their bytecode from pip either way).

Run: ``python bench/oneshot.py [--rounds 15] [--no-bytecode] [--imports] [--against DIR]``;
``--imports`` also lists the slowest imports of the caller, the supervisor and the fork
server (``python -X importtime``); ``--against DIR`` adds each ``2.0 private`` variant run
from another checkout (its ``src`` and ``workers`` first on PYTHONPATH, and ours then too),
to measure a change in the same run as what it changes; ``--variant NAME`` runs only the
variants named.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
FIXTURES = BENCH / "fixtures"  # holds the plugin folder ``hello``
CACHE = BENCH / ".cache"
V101 = CACHE / "v101"
PYCACHE = CACHE / "pycache"
MARK = "SPEC_KIT_ONESHOT_MARK"  # in the environment of every process a round starts
EXPECTED = {"success": True, "message": "Hello, World!"}

_HEAD = """
import time
marks = {"start": time.monotonic()}
import json, sys
from pathlib import Path
from spec_kit_contracts import MessageBuilder
from spec_kit_runtime import PluginContainer
"""
_TAIL = """
marks["sent"] = time.monotonic()
print(json.dumps({"marks": marks, "result": result}))
"""
_DISCOVER = """
marks["container"] = time.monotonic()
container.discover_plugins([Path(sys.argv[1])])
marks["discovered"] = time.monotonic()
"""
_LOAD = _DISCOVER + """
container.load_plugin(container.discovered_plugins["hello"], {})
marks["loaded"] = time.monotonic()
container.activate_plugin("hello")
marks["activated"] = time.monotonic()
"""
# The private supervisor's "ready" is timed by wrapping the container's launch_supervisor
# (where there is one).
_PRIVATE = _HEAD + """
module = sys.modules[PluginContainer.__module__]  # wherever a checkout keeps it
marks["imported"] = time.monotonic()
launch = getattr(module, "launch_supervisor", None)
if launch is not None:
    def timed_launch(*args, **kwargs):
        process = launch(*args, **kwargs)
        marks["ready"] = time.monotonic()
        return process
    module.launch_supervisor = timed_launch
container = PluginContainer()
""" + _LOAD + """
result = container.send_message("hello", MessageBuilder.command(name="hello:hello",
                                                                args=["World"]))
"""
SCRIPTS = {
    "2.0 private": _PRIVATE + _TAIL,
    "2.0 private, shutdown()": _PRIVATE + _TAIL.replace(
        "print", 'container.shutdown()\nmarks["shut down"] = time.monotonic()\nprint'),
    "2.0 attach": _HEAD + """
marks["imported"] = time.monotonic()
container = PluginContainer({"attach": True, "runtime_dir": sys.argv[2]})
""" + _DISCOVER + """
result = container.send_message("hello", MessageBuilder.command(name="hello:hello",
                                                                args=["World"]))
""" + _TAIL,
    "1.0.1": _HEAD + """
marks["imported"] = time.monotonic()
container = PluginContainer()
""" + _LOAD + """
result = container.message_bus.send(MessageBuilder.command(name="hello:hello",
                                                           args=["World"]))
""" + _TAIL,
    "bare import": "import spec_kit_contracts",
}
BASELINE = "1.0.1"

# (row, the mark it ends at, the mark it starts at: None for the mark just before);
# "launched" and "ended" are the benchmark's own clock (CLOCK_MONOTONIC, one clock for every
# process on Linux).
PHASES = (
    ("interpreter start", "start", "launched"),
    ("imports (contracts, runtime)", "imported", "start"),
    ("PluginContainer(): launch -> supervisor ready", "ready", "imported"),
    ("PluginContainer(): connect", "container", "ready"),
    ("PluginContainer()", "container", "imported"),
    ("discover", "discovered", "container"),
    ("load (worker spawned, plugin loaded)", "loaded", "discovered"),
    ("activate", "activated", "loaded"),
    ("send", "sent", None),
    ("shutdown()", "shut down", "sent"),
    ("exit (last line -> process gone)", "ended", None),
)


@dataclass(frozen=True)
class Variant:
    """One kind of process: its name in the table, its script, what goes on PYTHONPATH."""

    name: str
    script: str
    pythonpath: str | None = None  # 1.0.1's folder, or a checkout's src and workers
    private: bool = False  # starts a private supervisor (teardown is worth showing)

    @staticmethod
    def of(name: str, tree: Path | None = None, suffix: str = "") -> Variant:
        """``name`` of SCRIPTS; ``tree``: with that checkout's runtime (on PYTHONPATH,
        searched first for every import: both sides of a comparison go this way)."""
        path = None if tree is None else os.pathsep.join(
            str(tree / part) for part in ("src", "workers"))
        return Variant(name + suffix, SCRIPTS[name],
                       str(V101) if name == BASELINE else path, name.startswith("2.0 private"))


@dataclass
class Samples:
    """What the rounds measured of one variant, in seconds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    teardown: list[float] = field(default_factory=list)
    marks: list[dict[str, float]] = field(default_factory=list)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def install_v101() -> None:
    """spec-kit-runtime 1.0.1 into bench/.cache/v101, once (its dependencies are ours)."""
    if (V101 / "spec_kit_runtime" / "__init__.py").exists():
        return
    packages = ["spec-kit-runtime==1.0.1"]
    if importlib.util.find_spec("packaging") is None:  # 1.0.1 imports it; pytest brings it
        packages.append("packaging")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(V101), *packages], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"could not install spec-kit-runtime 1.0.1:\n{done.stderr}")


def environment(bytecode: bool, root: Path) -> dict[str, str]:
    """The variants' environment: the plugins' data folders, and the private folders that
    a container left without shutdown() leaves behind, inside ``root`` (removed at the end)."""
    (root / "tmp").mkdir(exist_ok=True)
    env = dict(os.environ, XDG_DATA_HOME=str(root / "data"), TMPDIR=str(root / "tmp"))
    env.pop("PYTHONPATH", None)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        env.pop("PYTHONPYCACHEPREFIX", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def marked(mark: str) -> list[int]:
    """The processes whose environment holds ``MARK=mark``."""
    needle = f"{MARK}={mark}\0".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as file:
                    if needle in file.read():
                        pids.append(int(entry.name))
            except OSError:  # gone meanwhile, or a zombie
                continue
    return pids


def wait_gone(mark: str, timeout: float = 30.0) -> float:
    """Seconds until no process holds ``mark``: woken by their pidfds, no polling. After
    ``timeout`` the rest are killed and it fails: a benchmark leaves nothing behind."""
    started = time.monotonic()
    deadline = started + timeout
    while pids := marked(mark):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            raise RuntimeError(f"processes still running {timeout:g}s after the round: {pids}")
        with _pidfds(pids) as fds:
            if fds:  # else all gone since the scan
                select.select(fds, [], [], remaining)
    return time.monotonic() - started


@contextlib.contextmanager
def _pidfds(pids: list[int]) -> Iterator[list[int]]:
    fds = []
    try:
        for pid in pids:
            with contextlib.suppress(OSError):  # already gone
                fds.append(os.pidfd_open(pid))
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def run_once(variant: Variant, env: dict[str, str], work: Path, attach_dir: Path) -> tuple[
        float, float, float, dict[str, float]]:
    """One process of ``variant``: (wall time, CPU time, teardown, its marks)."""
    mark = uuid.uuid4().hex
    env = dict(env, **{MARK: mark})
    if variant.pythonpath is not None:
        env["PYTHONPATH"] = variant.pythonpath
    # Files, not pipes: a private supervisor inherits them and outlives the caller.
    with open(work / "stdout", "w+b") as out, open(work / "stderr", "w+b") as err:
        launched = time.monotonic()
        process = subprocess.Popen([sys.executable, "-c", variant.script, str(FIXTURES),
                                    str(attach_dir)], stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=err, env=env)
        code, cpu = _wait(process, 120.0)
        ended = time.monotonic()
        teardown = wait_gone(mark)
        out.seek(0)
        err.seek(0)
        output, errors = out.read().decode(), err.read().decode()
    if code != 0:
        raise RuntimeError(f"{variant.name}: exit code {code}\n{errors}")
    marks: dict[str, float] = {}
    if output:
        answer = json.loads(output.splitlines()[-1])
        if answer["result"] != EXPECTED:
            raise RuntimeError(f"{variant.name}: unexpected answer {answer['result']!r}\n"
                               f"{errors}")
        marks = dict(answer["marks"], launched=launched, ended=ended)
    return ended - launched, cpu, teardown, marks


def _wait(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
    """Its exit code as soon as it exits (``Popen.wait`` with a timeout polls, with sleeps
    of up to 50 ms), and the CPU seconds of it and of the descendants it waited for;
    killed after ``timeout``."""
    with _pidfds([process.pid]) as fds:
        if not select.select(fds, [], [], timeout)[0]:
            process.kill()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


class AttachTarget:
    """``spec-kit-runtime run`` serving the fixture, for the attach variant."""

    def __init__(self, env: dict[str, str], runtime_dir: Path) -> None:
        self.mark = uuid.uuid4().hex
        self.runtime_dir = runtime_dir
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(runtime_dir.parent / "notify.sock"))
            self.process = subprocess.Popen(
                [sys.executable, "-m", "spec_kit_runtime", "run", "--plugins", str(FIXTURES),
                 "--runtime-dir", str(runtime_dir)], stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(env, **{MARK: self.mark, "NOTIFY_SOCKET": notify.getsockname()}))
            deadline = time.monotonic() + 60
            while True:  # READY=1 (systemd's protocol): every plugin has started
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("spec-kit-runtime run did not get ready")
                if select.select([notify], [], [], 1.0)[0] and b"READY=1" in notify.recv(4096):
                    break

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(60)
        wait_gone(self.mark)


def measure(rounds: int, bytecode: bool = True, names: tuple[str, ...] = tuple(SCRIPTS),
            against: Path | None = None) -> tuple[list[Variant], dict[str, Samples]]:
    """``rounds`` rounds of every variant in ``names``, taking turns, after one round not
    counted. ``against``: another checkout, whose runtime is measured too, in each 2.0
    private variant, then marked ``@ DIR`` (ours then goes through PYTHONPATH as well)."""
    variants = []
    for name in names:
        if against is not None and name.startswith("2.0 private"):
            variants += [Variant.of(name, BENCH.parent),
                         Variant.of(name, against, f" @ {against.name}")]
        else:
            variants.append(Variant.of(name))
    install_v101()
    root = Path(tempfile.mkdtemp(prefix="skr-oneshot-"))
    env = environment(bytecode, root)
    samples = {variant.name: Samples() for variant in variants}
    target = AttachTarget(env, root / "attach") if "2.0 attach" in names else None
    try:
        for number in range(rounds + 1):
            shift = number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                wall, cpu, teardown, marks = run_once(variant, env, root, root / "attach")
                if number:
                    samples[variant.name].wall.append(wall)
                    samples[variant.name].cpu.append(cpu)
                    samples[variant.name].teardown.append(teardown)
                    samples[variant.name].marks.append(marks)
    finally:
        if target is not None:
            target.close()
        shutil.rmtree(root, ignore_errors=True)
    return variants, samples


def phase_medians(marks: list[dict[str, float]]) -> dict[str, float]:
    """Each phase's median (ms) over the rounds, for the phases the variant has."""
    result = {}
    for name, end, begin in PHASES:
        taken = []
        for one in marks:
            if end not in one:
                continue
            if begin is None:  # from the mark just before
                begin_at = max(at for at in one.values() if at < one[end])
            elif begin in one:
                begin_at = one[begin]
            else:
                continue
            taken.append(one[end] - begin_at)
        if taken:
            result[name] = statistics.median(taken) * 1000
    return result


def print_report(variants: list[Variant], samples: dict[str, Samples], bytecode: bool) -> None:
    base = statistics.median(samples[BASELINE].wall) if BASELINE in samples else None
    private = {variant.name for variant in variants if variant.private}
    rounds = len(next(iter(samples.values())).wall)
    print(f"one-shot process, {os.cpu_count()} CPUs, {rounds} rounds, "
          f"{'with bytecode' if bytecode else 'no bytecode (PYTHONDONTWRITEBYTECODE)'}")
    rows: list[tuple[str, ...]] = [
        ("variant", "median ms", "p90 ms", "vs 1.0.1", "CPU ms", "teardown after exit ms")]
    for variant, got in samples.items():
        median = statistics.median(got.wall)
        rows.append((variant, f"{median * 1000:.0f}", f"{percentile(got.wall, 0.9) * 1000:.0f}",
                     "" if base is None or variant == BASELINE
                     else f"{(median - base) * 1000:+.0f} ms",
                     f"{statistics.median(got.cpu) * 1000:.0f}",
                     f"{statistics.median(got.teardown) * 1000:.0f}" if variant in private
                     else ""))
    _table(rows)
    print("CPU: user + system of the process and of what it waited for: without shutdown(),"
          " a private\nsupervisor's tree is nobody's child and not counted; with it, all is.")
    phased = {variant: phase_medians(got.marks) for variant, got in samples.items()
              if got.marks and got.marks[0]}
    if not phased:
        return
    print("\nwhere the time goes (medians, ms)")
    rows = [("phase", *phased)]
    for name, _, _ in PHASES:
        if any(name in figures for figures in phased.values()):
            rows.append((name, *(f"{figures[name]:.1f}" if name in figures else ""
                                  for figures in phased.values())))
    _table(rows)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


IMPORT_CASES = {
    "caller (2.0)": ["-c", "import spec_kit_contracts, spec_kit_runtime.client.container"],
    "caller (1.0.1)": ["-c", "import spec_kit_contracts, spec_kit_runtime"],
    "supervisor (spec-kit-runtime run)": ["-m", "spec_kit_runtime", "run", "--for", "0.01",
                                          "--runtime-dir", "{tmp}/rt"],
    "fork server": ["-c", "import spec_kit_worker.birth.forkserver"],
}


def print_imports(bytecode: bool, top: int = 12) -> None:
    """The slowest imports (cumulative, two levels deep) of each process, one run each."""
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(bytecode, Path(tmp))
        for name, args in IMPORT_CASES.items():
            run_env = dict(env, PYTHONPATH=str(V101)) if "1.0.1" in name else env
            done = subprocess.run([sys.executable, "-X", "importtime",
                                   *(arg.format(tmp=tmp) for arg in args)],
                                  env=run_env, capture_output=True, text=True, check=True)
            found = [(int(m[2]), len(m[3]) // 2, m[4]) for m in re.finditer(
                r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", done.stderr)]
            total = sum(us for us, depth, _ in found if depth == 0)
            print(f"\n{name}: {total / 1000:.0f} ms of imports (importtime's own cost "
                  "included); the slowest:")
            for us, depth, module in sorted((f for f in found if f[1] <= 1),
                                            key=lambda f: -f[0])[:top]:
                print(f"  {us / 1000:6.1f} ms  {'  ' * depth}{module}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile our sources at every start, as this checkout does")
    parser.add_argument("--imports", action="store_true", help="also list the slowest imports")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="another checkout of spec-kit-runtime, measured alongside")
    parser.add_argument("--variant", action="append", choices=SCRIPTS, dest="variants",
                        help="only this variant (repeatable; default: all)")
    args = parser.parse_args()
    bytecode = not args.no_bytecode
    against = args.against.resolve() if args.against else None
    print_report(*measure(args.rounds, bytecode, tuple(args.variants or SCRIPTS), against),
                 bytecode)
    if args.imports:
        print_imports(bytecode)


if __name__ == "__main__":
    main()
