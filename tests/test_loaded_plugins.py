"""``container.plugins``: the loaded plugins read like 1.0's plugin objects.

The static facts (metadata, config schema) come from the plugin's own code in its worker,
once, with the load's answer; the status is asked of the supervisor at each read, so a
crash, a stop or an unload shows. Pure parts by table, the rest with real processes.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
from spec_kit_contracts import Command, IPluginMetadata, PluginBase, PluginCapability, PluginStatus

from conftest import PLUGINS, copy_plugin, load_active, plugin_pids, running_container, wait_until
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.client.loaded_plugins import status_of
from spec_kit_runtime.errors import LifecycleError
from spec_kit_runtime.plugins.facts import checked, facts_from, facts_of

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
    facts = facts_from(checked(facts_of(_Sample())))
    assert facts.metadata == IPluginMetadata(
        name="s", version="2.0.0", author="a", description="d", homepage=None, license=None,
        dependencies=["x"], capabilities=[PluginCapability.GENERATOR, "custom"],
        config_schema={"k": 1})
    assert facts.metadata.capabilities[1].value == "custom"  # read as Spec-Kit reads them
    assert facts.config_schema == {"type": "object"}
    assert facts.config_schema_error is None


_GOOD = {"name": "s", "version": "1", "author": "", "description": "", "homepage": None,
         "license": None, "dependencies": [], "capabilities": [], "config_schema": {}}


def _nested(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(("blob", "problem"), [
    ("not bytes", "must be bytes"),
    (b"\xc1", "malformed"),
    (msgpack.packb({"metadata": {**_GOOD, "description": "x" * 70_000}}), "more than 65536"),
    (msgpack.packb({"metadata": "x"}), "a 'metadata' map"),
    (msgpack.packb([1]), "a 'metadata' map"),
    (msgpack.packb({"metadata": {**_GOOD, "capabilities": [["x"]]}}), "list of strings"),
    (msgpack.packb({"metadata": {**_GOOD, "name": 3}}), "metadata.name must be a string"),
    (msgpack.packb({"metadata": {**_GOOD, "license": 3}}), "metadata.license"),
    (msgpack.packb({"metadata": _GOOD, "config_schema": [1]}), "config_schema must be a map"),
    (msgpack.packb({"metadata": _GOOD, "more": 1}), "unknown fields"),
    (msgpack.packb({"metadata": _GOOD, "config_schema": {"x": _nested(40)}}), "nested more"),
    (msgpack.packb({"metadata": _GOOD, "config_schema": {"x": b"raw"}}), "holds a bytes"),
    (msgpack.packb({"metadata": _GOOD, "config_schema": {"x": msgpack.ExtType(2, b"")}}),
     "holds a ExtType"),
    (msgpack.packb({"metadata": _GOOD, "config_schema": {1: 2}}), "malformed"),
    (msgpack.packb({"metadata": _GOOD, "config_schema": {"x": float("nan")}}), "finite"),
])
def test_checked_refuses_what_a_hostile_worker_could_send(blob: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        checked(blob)


def test_checked_takes_good_facts() -> None:
    assert checked(msgpack.packb({"metadata": _GOOD, "config_schema": {"a": [1.5, None]}}))


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
        assert container.plugins["crashy"].metadata == handle.metadata


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
                       match=r"get_config_schema\(\) gave no schema: RuntimeError: no schema"):
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


# -- hostile or unusual facts, membership and refresh -----------------------------------------

@pytest.mark.parametrize(("lie", "problem"), [
    ("hide", "a 'metadata' map"),
    ("poison", "list of strings"),
    ("huge", "more than 65536"),
    ("ext", "holds a ExtType"),
])
def test_a_plugin_lying_about_itself_fails_its_load_only(
        container: PluginContainer, tmp_path: Path, lie: str, problem: str) -> None:
    """Facts are checked by the supervisor: unusable ones fail that plugin's load, and the
    supervisor, the container and the other plugins carry on."""
    load_active(container, PLUGINS / "host", "asker")
    folder = copy_plugin(HOST / "liar", tmp_path, "liar")
    (folder / "LIE").write_text(lie)
    container.discover_plugins([folder])
    with pytest.raises(LifecycleError, match=f"reported unusable metadata: .*{problem}"):
        container.load_plugin(container.discovered_plugins["liar"], {})
    assert list(container.plugins) == ["asker"]
    assert container.plugins["asker"].status is PluginStatus.ACTIVE


@pytest.mark.parametrize(("odd", "error"), [
    (False, "more than the 65536 byte limit"),
    (True, "holds a PosixPath"),
])
def test_a_schema_that_cannot_travel_is_reported_not_fatal(
        container: PluginContainer, tmp_path: Path, odd: bool, error: str) -> None:
    folder = copy_plugin(HOST / "bigschema", tmp_path, "bigschema")
    if odd:
        (folder / "ODD").touch()
    load_active(container, folder, "bigschema")
    handle = container.plugins["bigschema"]
    assert handle.status is PluginStatus.ACTIVE
    assert [c.value for c in handle.metadata.capabilities] == ["validator", "x-custom"]
    with pytest.raises(LifecycleError, match=f"gave no schema: it cannot be sent: .*{error}"):
        handle.get_config_schema()


def test_a_failed_load_is_not_listed_and_may_be_retried(
        container: PluginContainer, tmp_path: Path) -> None:
    """1.0 listed a plugin only once its load succeeded; Spec-Kit's CLI relies on it to
    load again after fixing the plugin."""
    marker = tmp_path / "fail-start"
    marker.touch()
    folder = copy_plugin(PLUGINS / "crash" / "crashy", tmp_path, "crashy")
    container.discover_plugins([folder])
    container.load_plugin(container.discovered_plugins["crashy"],
                          {"fail_start_marker": str(marker)})
    with pytest.raises(Exception, match="crashy"):
        container.activate_plugin("crashy")  # exits in activate: the load succeeded
    assert "crashy" in container.plugins
    container.unload_plugin("crashy")
    liar = copy_plugin(HOST / "liar", tmp_path, "liar")
    (liar / "LIE").write_text("hide")
    container.discover_plugins([liar])
    with pytest.raises(LifecycleError):
        container.load_plugin(container.discovered_plugins["liar"], {})
    assert "liar" not in container.plugins
    (liar / "LIE").write_text("poison")
    with pytest.raises(LifecycleError):  # a second try is a load again, not "already loaded"
        container.load_plugin(container.discovered_plugins["liar"], {})


def test_facts_are_fetched_again_after_a_restart(container: PluginContainer,
                                                  tmp_path: Path) -> None:
    """A restarted worker reads the plugin's code afresh: a client holding the old facts
    sees the new ones at its next read, whoever restarted it."""
    folder = copy_plugin(HOST / "asker", tmp_path, "asker")
    load_active(container, folder, "asker")
    from conftest import runtime_dir_of
    other = PluginContainer({"attach": True, "runtime_dir": str(runtime_dir_of(container))})
    try:
        assert other.plugins["asker"].metadata.description == "asks its host"
        source = folder / "asker_plugin.py"
        source.write_text(source.read_text().replace('"asks its host"', '"asks anew"'))
        container.restart_plugin("asker")
        assert container.plugins["asker"].metadata.description == "asks anew"
        assert other.plugins["asker"].metadata.description == "asks anew"
    finally:
        other.shutdown()


def test_reading_from_several_threads(container: PluginContainer) -> None:
    load_active(container, PLUGINS / "host", "asker")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                assert container.plugins["asker"].metadata.name == "asker"
                assert next(iter(container.plugins.items()))[0] == "asker"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
