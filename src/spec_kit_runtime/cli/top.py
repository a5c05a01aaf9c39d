"""``spec-kit-runtime top``: a live view of the plugins, refreshed every ``interval``.

``frame`` (pure) turns two status answers and a health answer (their records: see
``wire.status``) into the lines of a screen;
``run_top`` is the terminal edge: the alternate screen, keys without Enter (``q`` quits,
Ctrl-C and Ctrl-D too; without a terminal on stdin only Ctrl-C), and the terminal put back
as it was on every way out.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from spec_kit_runtime.policy.health import Health
from spec_kit_runtime.wire.protocol import ControlOp
from spec_kit_runtime.wire.status import Status, from_data

_COLUMNS = ("ID", "STATE", "PID", "CPU%", "MEM MB", "RESTARTS", "MSG/S", "ERRS", "P50 MS",
            "P99 MS", "LAST EXIT")


def frame(status: Status, health: Health, before: Status | None, seconds: float,
          width: int) -> list[str]:
    """The screen for ``status``; rates are over the ``seconds`` since ``before``."""
    supervisor = status.supervisor
    handled_before = {p.id: p.messages.handled for p in (before.plugins if before else ())}
    rows = [_COLUMNS]
    for plugin in status.plugins:
        usage, messages = plugin.usage, plugin.messages
        earlier = handled_before.get(plugin.id)
        rate = (messages.handled - earlier) / seconds if earlier is not None and seconds \
            else None
        rows.append((plugin.id, plugin.state, str(plugin.pid or "-"),
                     _number(usage.cpu_percent if usage else None),
                     _number(usage.rss_mb if usage else None),
                     str(plugin.restarts), _number(rate), str(messages.errors),
                     _number(messages.p50_ms), _number(messages.p99_ms),
                     plugin.last_exit or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        f"spec-kit-runtime {supervisor.version}  pid {supervisor.pid}  "
        f"up {supervisor.uptime:.0f}s  {health.status}"
        f"{'' if health.ready else ' (not ready)'}  "
        f"{len(status.plugins)} plugins  {supervisor.totals.handled} messages",
        *(f"  {reason}" for reason in health.reasons),
        "",
        *("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
          for row in rows),
        "",
        "q quits",
    ]
    return [line[:width] for line in lines]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def run_top(ask: Callable[[ControlOp], Any], interval: float, out: TextIO = sys.stdout,
            keys: TextIO = sys.stdin) -> int:
    """Refresh until ``q`` or Ctrl-C; ``ask(op)`` runs a control operation."""
    before: Status | None = None
    taken = time.monotonic()
    with _screen(out), _keys(keys) as pressed:
        while True:
            status = from_data(Status, ask(ControlOp.STATUS))
            health = from_data(Health, ask(ControlOp.HEALTH))
            now = time.monotonic()
            width = (os.get_terminal_size(out.fileno()).columns if out.isatty() else 0) or 200
            out.write("\x1b[H\x1b[2J" + "\n".join(frame(status, health, before,
                                                        now - taken, width)) + "\n")
            out.flush()
            before, taken = status, now
            if pressed(interval) == "q":
                return 0


@contextlib.contextmanager
def _screen(out: TextIO) -> Iterator[None]:
    """The alternate screen without a cursor, and the normal one back afterwards."""
    out.write("\x1b[?1049h\x1b[?25l")
    try:
        yield
    finally:
        out.write("\x1b[?25h\x1b[?1049l")
        out.flush()


@contextlib.contextmanager
def _keys(keys: TextIO) -> Iterator[Callable[[float], str | None]]:
    """A function waiting up to N seconds for one key (no Enter needed on a terminal)."""
    saved = termios.tcgetattr(keys) if keys.isatty() else None
    if saved is not None:
        tty.setcbreak(keys)

    def pressed(timeout: float) -> str | None:
        if saved is None:  # not a terminal (a pipe, /dev/null): no keys, only Ctrl-C
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([keys], [], [], timeout)
        if not ready:
            return None
        key = os.read(keys.fileno(), 16).decode(errors="replace")[:1]
        return "q" if key in ("", "\x04") else key  # end of input or Ctrl-D quit too

    try:
        yield pressed
    finally:
        if saved is not None:
            termios.tcsetattr(keys, termios.TCSADRAIN, saved)
