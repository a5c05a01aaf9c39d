"""``container.plugins``: the loaded plugins read like 1.0's plugin objects.

The static facts (metadata, config schema) come from the plugin's own code in its worker,
once, with the load's answer; the status is asked of the supervisor at each read, so a
crash, a stop or an unload shows. Pure parts by table, the rest with real processes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command, IPluginMetadata, PluginBase, PluginCapability, PluginStatus

from conftest import PLUGINS, copy_plugin, load_active, plugin_pids, running_container, wait_until
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import LifecycleError
from spec_kit_runtime.loaded_plugins import status_of
from spec_kit_runtime.plugin_facts import facts_from, facts_of

pytestmark = pytest.mark.timeout(60)
HOST = PLUGINS / "host"


@pytest.mark.parametrize(("state", "status"), [
    ("active", PluginStatus.ACTIVE),
    ("initialized", PluginStatus.INITIALIZED),
    ("loading", PluginStatus.LOADING),
    ("restarting", PluginStatus.LOADING),
    ("stopped", PluginStatus.DISABLED),
    ("failed", PluginStatus.ERROR),
    ("error", PluginStatus.ERROR),
    ("unloaded", PluginStatus.UNLOADED),
    ("something new", PluginStatus.ERROR),
    (None, PluginStatus.ERROR),
])
def test_status_of_each_supervisor_state(state: Any, status: PluginStatus) -> None:
    assert status_of(state) is status


class _Sample(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="s", version="2.0.0", author="a", description="d",
                               capabilities=[PluginCapability.GENERATOR, "custom"],
                               dependencies=["x"], config_schema={"k": 1})

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def handle_message(self, message: Any) -> None:
        return None


def test_facts_round_trip_keeps_the_plugins_own_metadata() -> None:
    facts = facts_from(facts_of(_Sample()))
    assert facts is not None
    assert facts.metadata == IPluginMetadata(
        name="s", version="2.0.0", author="a", description="d", homepage=None, license=None,
        dependencies=["x"], capabilities=[PluginCapability.GENERATOR, "custom"],
        config_schema={"k": 1})
    assert facts.config_schema == {"type": "object"}
    assert facts.config_schema_error is None


@pytest.mark.parametrize("data", [None, {}, {"metadata": "x"}, ["metadata"]])
def test_facts_from_something_else_is_none(data: Any) -> None:
    assert facts_from(data) is None


def test_plugins_from_load_to_unload(container: PluginContainer) -> None:
    """Present from load, with the plugin's own metadata; the status follows the plugin;
    gone at unload."""
    assert "asker" not in container.plugins
    assert len(container.plugins) == 0
    container.discover_plugins([HOST])
    container.load_plugin(container.discovered_plugins["asker"], {})
    handle = container.plugins["asker"]
    assert handle.plugin_id == "asker"
    assert handle.metadata.description == "asks its host"  # the code's, not the manifest's
    assert handle.metadata.capabilities == [PluginCapability.COMMAND,
                                            PluginCapability.EVENT_LISTENER]
    assert (handle.metadata.homepage, handle.metadata.license) == (
        "https://example.invalid/asker", "MIT")
    assert handle.get_config_schema() == {"type": "object",
                                          "properties": {"loud": {"type": "boolean"}}}
    assert handle.status is PluginStatus.INITIALIZED
    container.activate_plugin("asker")
    assert handle.status is PluginStatus.ACTIVE
    assert list(container.plugins) == ["asker"]
    assert dict(container.plugins.items()) == {"asker": handle}
    container.stop_plugin("asker")
    assert handle.status is PluginStatus.DISABLED
    container.start_plugin("asker")
    assert container.plugins["asker"].status is PluginStatus.ACTIVE
    container.unload_plugin("asker")
    assert "asker" not in container.plugins
    assert handle.status is PluginStatus.UNLOADED
    with pytest.raises(KeyError):
        container.plugins["asker"]


def test_a_crash_shows_in_the_status_and_the_restart_after_it(tmp_path: Path) -> None:
    """While its restarts fail (activate exits while a marker file exists) the plugin
    reads as not active; once they succeed, as active, with the same handle."""
    marker = tmp_path / "fail-start"
    with running_container() as container:
        folder = copy_plugin(PLUGINS / "crash" / "crashy", tmp_path, "crashy")
        load_active(container, folder, "crashy", {"fail_start_marker": str(marker)})
        handle = container.plugins["crashy"]
        marker.touch()
        os.kill(plugin_pids(container)["crashy"], signal.SIGKILL)
        wait_until(lambda: handle.status in (PluginStatus.LOADING, PluginStatus.ERROR),
                   timeout=10.0, what="the crash in the status")
        marker.unlink()
        wait_until(lambda: handle.status is PluginStatus.ACTIVE, timeout=20.0,
                   what="the restart in the status")
        assert container.plugins["crashy"] is handle  # same facts: no new question for them


def test_static_facts_are_read_without_asking_the_supervisor(tmp_path: Path) -> None:
    """The metadata and schema stay readable after the supervisor is gone: they travelled
    with the load's answer, not one question per read."""
    with running_container() as container:
        container.discover_plugins([HOST])
        container.load_plugin(container.discovered_plugins["asker"], {})
        handle = container.plugins["asker"]
    assert handle.metadata.name == "asker"
    assert handle.get_config_schema()["type"] == "object"


def test_a_failing_config_schema_is_the_plugins_error_not_the_loads(
        container: PluginContainer, tmp_path: Path) -> None:
    folder = copy_plugin(HOST / "asker", tmp_path, "asker")
    (folder / "SCHEMA_RAISES").touch()
    load_active(container, folder, "asker")
    handle = container.plugins["asker"]
    assert handle.status is PluginStatus.ACTIVE
    with pytest.raises(LifecycleError,
                       match=r"get_config_schema\(\) raised RuntimeError: no schema"):
        handle.get_config_schema()


def test_an_attached_container_sees_plugins_another_client_loaded(
        container: PluginContainer) -> None:
    from conftest import runtime_dir_of
    container.discover_plugins([HOST])
    container.load_plugin(container.discovered_plugins["asker"], {})
    container.activate_plugin("asker")
    attached = PluginContainer({"attach": True, "runtime_dir": str(runtime_dir_of(container))})
    try:
        handle = attached.plugins["asker"]
        assert handle.metadata.description == "asks its host"
        assert handle.status is PluginStatus.ACTIVE
        assert attached.message_bus.send(Command(command_name="asker:announce")) == 0
        container.unload_plugin("asker")
        assert "asker" not in attached.plugins
    finally:
        attached.shutdown()
