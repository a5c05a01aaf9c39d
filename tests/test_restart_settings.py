"""Restart settings: validated in manifests and config alike; manifest < config precedence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, copy_plugin, load_active, running_container, wait_until
from spec_kit_runtime import ManifestError, WorkerDiedError, read_manifest
from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.plugins.config import RuntimeConfig, config_from_data
from spec_kit_runtime.policy.restart import RestartType

CRASHY = PLUGINS / "crash" / "crashy"


@pytest.mark.parametrize(("restart", "why"), [
    ("always", "must be a mapping"),
    ({"type": "sometimes"}, "permanent, transient or temporary"),
    ({"max_restarts": -1}, "max_restarts must be an integer >= 0"),
    ({"max_restarts": True}, "max_restarts must be an integer >= 0"),
    ({"period": "60"}, "period must be a finite number >= 0"),
    ({"backoff_factor": 0.5}, "backoff_factor must be at least 1"),
    ({"retries": 3}, "unknown key 'retries'"),
])
def test_bad_restart_settings_in_a_manifest(tmp_path: Path, restart: Any, why: str) -> None:
    folder = copy_plugin(CRASHY, tmp_path, "picky", restart=restart)
    with pytest.raises(ManifestError, match=why) as caught:
        read_manifest(folder / "plugin.json")
    assert caught.value.field == "restart" and caught.value.file.endswith("plugin.json")


def test_bad_restart_settings_in_the_config() -> None:
    with pytest.raises(ConfigError, match=r"'plugins\.design\.restart': unknown key"):
        config_from_data({"plugins": {"design": {"restart": {"retries": 1}}}}, Path("c.yaml"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_config_may_not_give_a_restart_delay_that_is_no_number(bad: float) -> None:
    """YAML's .nan once reached the timers: the supervisor died converting it to an int."""
    with pytest.raises(ConfigError, match="backoff_initial must be a finite number"):
        config_from_data({"runtime": {"restart": {"backoff_initial": bad}}}, Path("c.yaml"))


def test_precedence_defaults_then_manifest_then_config() -> None:
    config = config_from_data({
        "runtime": {"restart": {"max_restarts": 9, "period": 10}},
        "plugins": {"design": {"restart": {"period": 20}}},
    }, Path("c.yaml"))
    policy = config.restart_policy_for("design", {"type": "transient", "period": 15})
    assert policy.restart is RestartType.TRANSIENT  # from the manifest
    assert policy.max_restarts == 9  # from the runtime defaults
    assert policy.period == 20  # the config file has the last word
    assert RuntimeConfig().restart_policy_for("x").restart is RestartType.PERMANENT


def test_a_temporary_manifest_plugin_is_not_restarted(tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "once", restart={"type": "temporary"})
    with running_container() as container:
        load_active(container, tmp_path, "once")
        with pytest.raises(WorkerDiedError):
            container.send_message("once", Command(command_name="once:exit"))
        wait_until(lambda: container.status()["plugins"][0]["state"] == "error")
        entry = container.status()["plugins"][0]
        assert entry["restart_type"] == "temporary" and entry["restarts"] == 0
        assert json.loads((tmp_path / "once" / "plugin.json").read_text())["restart"]
