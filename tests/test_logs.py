"""The supervisor's log as JSON: one object per line, and every line about a plugin carries
its id, its own messages and its captured output alike."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from spec_kit_runtime.logs.formats import JsonFormatter, PluginTagger
from test_cli import cli, start_run, stop_run, wait_active

pytestmark = pytest.mark.timeout(60)
HOG = Path(__file__).parent / "plugins" / "crash" / "hog"


@pytest.mark.parametrize(("msg", "args", "plugin"), [
    ("plugin %s: worker %s", ("design", "exited"), "design"),
    ("plugin %s is active", ("audit",), "audit"),
    ("supervisor %s listening on %s", (12, "ipc://x"), None),
    ("plugin %s", (3,), None),  # not an id
])
def test_records_about_a_plugin_get_its_id(msg: str, args: tuple[object, ...],
                                           plugin: str | None) -> None:
    record = logging.LogRecord("spec_kit_runtime", logging.INFO, __file__, 1, msg, args, None)
    PluginTagger().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry.get("plugin") == plugin
    assert entry["message"] == msg % args and entry["level"] == "INFO"


def test_run_logs_json_lines_tagged_with_the_plugin(tmp_path: Path) -> None:
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--plugins", str(HOG), "--log-format", "json",
                    "--runtime-dir", str(runtime_dir), runtime_dir=runtime_dir)
    try:
        wait_active(run, {"hog"})
        sent = cli("send", "hog", "command:hog:print", "--payload",
                   '{"options": {"text": "json-line"}}', "--runtime-dir", str(runtime_dir))
        assert sent.returncode == 0, sent.stderr
    finally:
        stop_run(run)
    entries = [json.loads(line) for line in run.log.read_text().splitlines()]
    printed = [e for e in entries if e["message"] == "[hog] json-line"]
    assert {(e["plugin"], e["stream"]) for e in printed} == {("hog", "stdout"), ("hog", "stderr")}
    about_hog = [e for e in entries if e["message"].startswith("plugin hog")]
    assert about_hog and all(e["plugin"] == "hog" for e in about_hog)
