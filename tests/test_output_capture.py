"""Workers' stdout and stderr: into the supervisor's log tagged with the plugin, bounded by
the plugin's output limit, with what is dropped counted in status."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from spec_kit_contracts import Command

from conftest import GOOD, PLUGINS, load_active, running_container, wait_until
from spec_kit_runtime.policy.output_budget import OutputBudget, OutputFigures
from spec_kit_runtime.supervisor.output_capture import (
    LINE_OVERHEAD,
    MAX_LINE_BYTES,
    MAX_LINES_PER_READ,
    OutputCapture,
)
from test_cli import cli, start_run, stop_run, wait_active

pytestmark = pytest.mark.timeout(60)
HOG = PLUGINS / "crash"


def hog(container: Any, action: str, **options: Any) -> Any:
    return container.send_message("hog", Command(command_name=f"hog:{action}", options=options))


def output_of(container: Any) -> dict[str, int]:
    (entry,) = [p for p in container.status()["plugins"] if p["id"] == "hog"]
    return dict(entry["output"])


def test_lines_reach_the_supervisor_log_tagged_with_the_plugin(tmp_path: Path) -> None:
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--plugins", str(HOG / "hog"), "--runtime-dir", str(runtime_dir),
                    runtime_dir=runtime_dir)
    try:
        wait_active(run, {"hog"})
        payload = json.dumps({"options": {"text": "printed-by-hog"}})
        sent = cli("send", "hog", "command:hog:print", "--payload", payload,
                   "--runtime-dir", str(runtime_dir))
        assert sent.returncode == 0, sent.stderr

        def logged() -> list[str]:
            return [line for line in run.log.read_text().splitlines()
                    if line.endswith("[hog] printed-by-hog")]

        lines = wait_until(lambda: len(logged()) == 2 and logged(), what="both lines logged")
        assert any(" INFO " in line for line in lines)  # stdout
        assert any(" WARNING " in line for line in lines)  # stderr
    finally:
        stop_run(run)


def test_a_flood_is_dropped_and_counted_while_others_keep_answering() -> None:
    with running_container(limits={"output_kb_per_s": 16}) as container:
        load_active(container, HOG / "hog", "hog")
        load_active(container, GOOD, "design")
        supervisor = psutil.Process(container.status()["supervisor"]["pid"])
        before = supervisor.memory_info().rss
        flooded: list[int] = []
        flooding = threading.Thread(target=lambda: flooded.append(hog(container, "flood", mb=64)))
        started = time.monotonic()
        flooding.start()
        answers = 0
        while flooding.is_alive():
            assert container.send_message("design", Command(
                command_name="design:generate", arguments=["t"]))["doc"] == "# t"
            answers += 1
        flooding.join()
        took = time.monotonic() - started
        assert flooded == [64 << 20] and answers > 0
        output = wait_until(lambda: (o := output_of(container))["logged_bytes"]
                            + o["dropped_bytes"] >= 64 << 20 and o, what="the flood read")
        allowed = 16 * 1024 * (4 + took + 1)  # the burst, then the rate
        assert output["logged_bytes"] <= allowed
        assert output["dropped_bytes"] >= (64 << 20) - allowed
        assert supervisor.memory_info().rss - before < 32 << 20


def test_a_line_without_an_end_is_cut_at_the_line_limit() -> None:
    with running_container() as container:
        load_active(container, HOG / "hog", "hog")
        hog(container, "print", text="y" * (MAX_LINE_BYTES * 3))
        output = wait_until(lambda: (o := output_of(container))["logged_bytes"]
                            + o["dropped_bytes"] >= 2 * (3 * MAX_LINE_BYTES + 1) and o,
                            what="both long lines read")
        # stdout and stderr: each line cut to MAX_LINE_BYTES (+1 for its end), the rest dropped
        assert output["logged_bytes"] == 2 * (MAX_LINE_BYTES + 1)
        assert output["dropped_bytes"] == 2 * 2 * MAX_LINE_BYTES


def test_a_flood_of_empty_lines_does_not_stall_the_loop() -> None:
    """Each line costs the budget its log record, and one read logs a bounded number."""
    with running_container() as container:
        load_active(container, HOG / "hog", "hog")
        load_active(container, GOOD, "design")
        started = time.monotonic()
        hog(container, "print", text="\n" * 2_000_000)  # to stdout and stderr
        output = wait_until(lambda: (o := output_of(container))["logged_bytes"]
                            + o["dropped_bytes"] >= 2 * 2_000_000 and o, what="the flood read")
        took = time.monotonic() - started
        # Empty lines: logged_bytes counts the lines logged. Each costs 1 + 64 bytes of the
        # 256 KiB/s budget (with 4 s of it at once); charged 1 byte each, a million would pass.
        allowed = 256 * 1024 * (4 + took) / (1 + LINE_OVERHEAD)
        assert output["logged_bytes"] <= allowed + MAX_LINES_PER_READ, (output, allowed)
        assert output["dropped_lines"] >= 2 * 2_000_000 - allowed - MAX_LINES_PER_READ
        assert container.send_message("design", Command(
            command_name="design:generate", arguments=["t"]))["doc"] == "# t"


def test_a_long_line_split_across_reads_is_logged_once() -> None:
    """Driven by hand on a real pipe: where the reads split a line does not matter."""
    read_end, write_end = os.pipe()
    budget = OutputBudget(rate=None, burst=0.0)
    capture = OutputCapture(time.monotonic)
    spare_read, spare_write = os.pipe()
    capture.add("p", budget, read_end, spare_read)
    try:
        for chunk in (b"z" * 5000, b"z" * 5000, b"z" * 5000 + b"\nnext\n"):
            os.write(write_end, chunk)
            capture.ready()
        assert budget.figures() == OutputFigures(
            logged_bytes=(MAX_LINE_BYTES + 1) + len(b"next\n"),
            dropped_bytes=15000 - MAX_LINE_BYTES, dropped_lines=0)
    finally:
        os.close(write_end)
        os.close(spare_write)
        capture.close()
