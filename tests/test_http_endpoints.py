"""HTTP endpoints against real state: probe codes, /metrics parsed with prometheus-client's
own parser and matching status, /status as JSON; off by default, loopback only."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from spec_kit_contracts import Command

from conftest import GOOD, PLUGINS, load_active, running_container, wait_until
from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.plugins.config import config_from_data

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"


def get(address: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_probes_metrics_and_status_follow_real_state() -> None:
    with running_container(http="127.0.0.1:0", restart={"max_restarts": 0}) as container:
        address = container.status()["supervisor"]["http"]
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        load_active(container, GOOD, "design")
        load_active(container, CRASHY, "crashy")
        for _ in range(3):
            container.send_message("design", Command(command_name="design:generate",
                                                     arguments=["m"]))
        assert get(address, "/healthz") == (200, "ok\n")
        assert get(address, "/readyz") == (200, "ready\n")

        code, text = get(address, "/metrics")
        assert code == 200
        figures = samples(text)
        status = container.status()
        design = next(p for p in status["plugins"] if p["id"] == "design")
        assert figures[("spec_kit_plugin_messages_total", (("plugin", "design"),))] == \
            design["messages"]["handled"] == 3
        assert figures[("spec_kit_plugin_state", (("plugin", "design"), ("state", "active")))] \
            == 1
        assert figures[("spec_kit_health_status", ())] == 0
        assert figures[("spec_kit_ready", ())] == 1

        code, body = get(address, "/status")
        assert code == 200 and {p["id"] for p in json.loads(body)["plugins"]} == {
            "design", "crashy"}

        with pytest.raises(Exception, match="exited with code 3"):
            container.send_message("crashy", Command(command_name="crashy:exit"))
        wait_until(lambda: get(address, "/readyz")[0] == 503, what="not ready")
        code, text = get(address, "/readyz")
        assert text.startswith("not ready\ncrashy: failed")
        assert get(address, "/healthz")[0] == 200  # not ready, but alive
        figures = samples(get(address, "/metrics")[1])
        assert figures[("spec_kit_health_status", ())] == 2
        assert figures[("spec_kit_plugin_state", (("plugin", "crashy"), ("state", "failed")))] \
            == 1
        assert get(address, "/nowhere")[0] == 404


def test_http_is_off_by_default() -> None:
    with running_container() as container:
        assert container.status()["supervisor"]["http"] is None


@pytest.mark.parametrize("value", ["0.0.0.0:9464", "10.0.0.1:80", "localhost", "127.0.0.1:x",
                                   "127.0.0.1:70000", 9464, "[::1]:9464"])
def test_http_only_on_loopback(value: Any) -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        config_from_data({"runtime": {"http": value}}, Path("c.yaml"))


def test_an_idle_client_holds_up_neither_probes_nor_the_exit() -> None:
    with running_container(http="127.0.0.1:0") as container:
        address = container.status()["supervisor"]["http"]
        host, port = address.rsplit(":", 1)
        idle = socket.create_connection((host, int(port)))  # says nothing at all
        try:
            assert get(address, "/healthz") == (200, "ok\n")
            started = time.monotonic()
        finally:
            container.shutdown()
            idle.close()
        assert time.monotonic() - started < 10  # shutdown did not wait for the idle client
