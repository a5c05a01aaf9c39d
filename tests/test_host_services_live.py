"""The host services through real supervisors, workers and sockets.

``notes`` is sandboxed (no ``open``, no ``os``) and uses every service the way a 1.0 plugin
would, through ``registry.get_service``. ``intruder`` is trusted, so it can plant symbolic
links in its own private folder and craft ServiceCall records by hand: it tries to read
and write what is not its own, and to upset the supervisor with malformed calls.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, load_active, plugin_entry, running_container, track, wait_until
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.supervisor.host_services.state import StateStore
from spec_kit_runtime.wire.codec import pack_value

pytestmark = pytest.mark.timeout(60)
SERVICES = PLUGINS / "services"
NOTES_CONFIG = {"author": "tests", "output": {"format": "md", "width": 80}}


@dataclass
class World:
    container: PluginContainer
    base: Path
    data: Path
    docs: Path
    out: Path

    def notes(self, name: str, *arguments: str, **options: Any) -> Any:
        return command(self.container, "notes", name, *arguments, **options)

    def intruder(self, name: str, *arguments: str, **options: Any) -> Any:
        return command(self.container, "intruder", name, *arguments, **options)


def command(container: PluginContainer, plugin: str, name: str, *arguments: str,
            **options: Any) -> Any:
    return container.send_message(plugin, Command(command_name=f"{plugin}:{name}",
                                                  arguments=list(arguments), options=options))


@contextlib.contextmanager
def world_in(base: Path, **runtime_config: Any) -> Iterator[World]:
    """A supervisor running notes (with a read-only and a writable root) and intruder."""
    docs, out, data = base / "docs", base / "out", base / "data"
    for folder in (docs, out):
        folder.mkdir(exist_ok=True)
    (docs / "spec.md").write_text("# Spec")
    (base / "outside.txt").write_text("outside")
    plugins = {"notes": {"filesystem": [{"path": str(docs)},
                                        {"path": str(out), "writable": True}],
                         **runtime_config.pop("notes", {})}}
    with running_container(data_dir=str(data), plugins=plugins, **runtime_config) as container:
        load_active(container, SERVICES / "notes", "notes", config=NOTES_CONFIG)
        load_active(container, SERVICES / "intruder", "intruder",
                    config={"private": str(data / "plugins" / "intruder")})
        track(container)
        yield World(container, base, data, docs, out)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world_in(tmp_path_factory.mktemp("host-services")) as shared:
        yield shared


def ok(outcome: dict[str, Any]) -> Any:
    assert outcome["ok"], outcome
    return outcome["result"]


def refused(outcome: dict[str, Any], error: str = "PathRefusedError") -> str:
    assert not outcome["ok"], outcome
    assert outcome["error"] == error, outcome
    return str(outcome["message"])


# -- a sandboxed plugin touches the world through the services -----------------------------

def test_a_sandboxed_plugin_reads_and_writes_its_private_folder(world: World) -> None:
    assert plugin_entry(world.container, "notes")["sandbox"] is True
    ok(world.notes("fs", "mkdir", "days"))
    ok(world.notes("fs", "write", "days/today.md", content="# Today\nwrote it"))
    assert ok(world.notes("fs", "read", "days/today.md")) == "# Today\nwrote it"
    assert ok(world.notes("fs", "exists", "days/today.md")) is True
    assert ok(world.notes("fs", "list", "days", "*.md")) == ["days/today.md"]
    on_disk = world.data / "plugins" / "notes" / "days" / "today.md"
    assert on_disk.read_text() == "# Today\nwrote it"
    assert on_disk.stat().st_mode & 0o777 == 0o600
    assert (world.data.stat().st_mode & 0o777) == 0o711  # plugin_data: pass through, not list
    ok(world.notes("fs", "delete", "days"))
    assert not on_disk.parent.exists()
    missing = world.notes("fs", "read", "days/today.md")
    refused(missing, "ServiceFileNotFoundError")
    assert missing["oserror"] is True  # a FileNotFoundError, as the contract says


def test_configured_roots_are_read_only_unless_writable(world: World) -> None:
    assert ok(world.notes("fs", "read", str(world.docs / "spec.md"))) == "# Spec"
    assert ok(world.notes("fs", "list", str(world.docs))) == [str(world.docs / "spec.md")]
    assert "read-only" in refused(world.notes("fs", "write", str(world.docs / "spec.md"),
                                              content="defaced"))
    refused(world.notes("fs", "delete", str(world.docs / "spec.md")))
    assert (world.docs / "spec.md").read_text() == "# Spec"
    ok(world.notes("fs", "write", str(world.out / "report.md"), content="report"))
    assert (world.out / "report.md").read_text() == "report"


@pytest.mark.parametrize("path", ["../intruder", "../../state/notes.msgpack", "/etc/passwd",
                                  "a/../../x"])
def test_paths_outside_the_roots_are_refused(world: World, path: str) -> None:
    refused(world.notes("fs", "read", path))


def test_absolute_paths_outside_the_roots_are_refused(world: World) -> None:
    for path in (world.base / "outside.txt", world.data / "state" / "notes.msgpack",
                 world.data / "plugins" / "intruder"):
        refused(world.notes("fs", "read", str(path)))


# -- a hostile plugin --------------------------------------------------------------------

def test_a_hostile_plugin_cannot_reach_another_plugins_files(world: World) -> None:
    ok(world.notes("fs", "write", "mine.txt", content="notes' own"))
    mine = world.data / "plugins" / "notes" / "mine.txt"
    refused(world.intruder("read", "../notes/mine.txt"))
    refused(world.intruder("read", str(mine)))
    world.intruder("plant", "to_notes", str(mine))
    world.intruder("plant", "up", "../notes")
    world.intruder("plant", "to_root", "/")
    world.intruder("plant", "loop1", "loop2")
    world.intruder("plant", "loop2", "loop1")
    for path in ("to_notes", "up/mine.txt", "to_root/etc/passwd", "loop1"):
        assert world.intruder("read", path)["code"] == "path_refused", path
    assert world.intruder("list", "up")["code"] == "path_refused"
    assert world.intruder("write", "to_notes")["code"] == "path_refused"
    assert world.intruder("delete", "up/mine.txt")["code"] == "path_refused"
    assert world.intruder("delete", "to_notes") == {"ok": True, "result": None}  # the link
    assert mine.read_text() == "notes' own"
    assert ok(world.notes("fs", "read", "mine.txt")) == "notes' own"


def test_a_hostile_plugin_cannot_read_another_plugins_state(world: World) -> None:
    ok(world.notes("state", "set", "secret", value="notes' secret"))
    ok(world.notes("state", "persist"))
    assert world.intruder("get_state", "secret") == {"ok": True, "result": "<unset>"}
    asking_for_notes = world.intruder("raw", "state", "get_state",
                                      args={"key": "secret", "plugin": "notes"})
    assert asking_for_notes["code"] == "service"
    assert "takes a map of ['key']" in asking_for_notes["message"]
    state_file = world.data / "state" / "notes.msgpack"
    assert state_file.stat().st_mode & 0o777 == 0o600
    world.intruder("plant", "to_state", str(state_file))
    assert world.intruder("read", "to_state")["code"] == "path_refused"
    assert world.intruder("read", str(state_file))["code"] == "path_refused"
    assert ok(world.notes("state", "get", "secret")) == "notes' secret"


@pytest.mark.parametrize(("service", "method", "options", "code", "says"), [
    ("nosuch", "read_file", {"args": {}}, "service", "no host service call 'nosuch.read_file'"),
    ("filesystem", "chmod", {"args": {"path": "x"}}, "service", "no host service call"),
    ("filesystem", "read_file", {"args": {"path": 7}}, "service", "'path' must be a string"),
    ("filesystem", "read_file", {"args": ["x"]}, "service", "takes a map"),
    ("filesystem", "read_file", {"body": b"\xc1"}, "protocol", "malformed body"),
    ("filesystem", "read_file", {"body": b""}, "service", "takes a map"),
    ("config", "set", {"args": {"key": "..", "value": 1}}, "service", "dot-separated"),
    ("logging", "log", {"args": {"level": "LOUD", "message": "m", "fields": {}}},
     "service", "log level"),
])
def test_malformed_calls_get_typed_errors(world: World, service: str, method: str,
                                          options: dict[str, Any], code: str, says: str) -> None:
    outcome = world.intruder("raw", service, method, **options)
    assert outcome["ok"] is False and outcome["code"] == code, outcome
    assert says in outcome["message"]
    assert ok(world.notes("fs", "exists", "")) is True  # the supervisor serves on


def test_a_flood_of_malformed_one_way_calls_changes_nothing(world: World) -> None:
    assert world.intruder("one_way", count=2000) == "sent"
    assert world.container.health()["live"]
    assert world.intruder("get_state", "secret")["ok"]
    assert plugin_entry(world.container, "intruder")["state"] == "active"


# -- config, events ----------------------------------------------------------------------

def test_the_config_service_is_the_plugins_own_section(world: World) -> None:
    assert ok(world.notes("config", "get", "author")) == "tests"
    assert ok(world.notes("config", "get", "output.width")) == 80
    assert ok(world.notes("config", "get", "missing.key")) == "<unset>"
    assert ok(world.notes("config", "section", "output")) == {"format": "md", "width": 80}
    ok(world.notes("config", "set", "output.width", value=100))
    assert ok(world.notes("config", "get", "output.width")) == 100
    assert "save is refused" in refused(world.notes("config", "save"), "ServiceError")


def test_the_event_service_emits_under_the_plugins_name_within_scope(world: World) -> None:
    ok(world.notes("emit", "done", n=1))
    ok(world.notes("emit", "notes:twice", n=2))  # already named: not prefixed again
    seen = world.notes("seen")
    assert {"event": "notes:done", "data": {"n": 1}, "source": "notes"} in seen
    assert {"event": "notes:twice", "data": {"n": 2}, "source": "notes"} in seen
    assert refused(world.notes("subscribe", "design:*"), "ScopeError")
    ok(world.notes("unsubscribe"))
    ok(world.notes("emit", "after", n=3))
    assert not [e for e in world.notes("seen") if e["event"] == "notes:after"]


def test_get_service_names_what_it_serves(world: World) -> None:
    message = refused(world.notes("missing_service"), "ServiceContractError")
    assert "IFileSystemService" in message and "IStateService" in message


# -- logging -----------------------------------------------------------------------------

def test_log_lines_reach_the_supervisors_log_tagged_and_bounded(tmp_path: Path) -> None:
    with world_in(tmp_path, notes={"limits": {"output_kb_per_s": 1}}) as world:
        log_file = Path(world.container.status()["supervisor"]["log_file"])
        world.notes("log", "warning", "hello from notes")
        world.notes("log", "info", "below the supervisor's level")
        world.notes("log", "warning", "x" * 100, count=2000)
        output = plugin_entry(world.container, "notes")["output"]
        assert world.container.health()["live"]
    err = log_file.read_text()  # complete: the supervisor has stopped
    assert "WARNING spec_kit_runtime.plugin: [notes] hello from notes index=0" in err
    assert "below the supervisor's level" not in err
    assert output["dropped_lines"] > 1500, output  # 1 KiB/s, 4 KiB at once: most dropped
    assert output["logged_bytes"] < 16 * 1024, output


# -- state across restarts ---------------------------------------------------------------

def test_state_survives_a_killed_worker(tmp_path: Path) -> None:
    with world_in(tmp_path) as world:
        ok(world.notes("state", "set", "count", value=41))
        ok(world.notes("config", "set", "output.format", value="html"))
        old = plugin_entry(world.container, "notes")["pid"]
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: (entry := plugin_entry(world.container, "notes"))["state"] == "active"
                   and entry["pid"] not in (None, old), timeout=15, what="notes restarted")
        track(world.container)
        assert ok(world.notes("state", "get", "count")) == 41
        assert ok(world.notes("config", "get", "output.format")) == "md"  # the view is reset
        state_file = world.data / "state" / "notes.msgpack"
        assert StateStore(state_file, 1 << 20).get("count") == (True, 41)  # written at the end


def test_state_survives_the_supervisor(tmp_path: Path) -> None:
    with world_in(tmp_path) as world:
        ok(world.notes("state", "set", "kept", value={"by": "orderly stop"}))
        ok(world.notes("state", "set", "gone", value=1))
        ok(world.notes("state", "clear", "gone"))
    with world_in(tmp_path) as world:
        assert ok(world.notes("state", "get", "kept")) == {"by": "orderly stop"}
        assert ok(world.notes("state", "get", "gone")) == "<unset>"
        ok(world.notes("state", "clear"))
        ok(world.notes("state", "persist"))
        assert StateStore(world.data / "state" / "notes.msgpack", 1024).get("kept")[0] is False


def test_state_values_are_what_the_wire_carries(world: World) -> None:
    outcome = world.intruder("raw", "state", "set_state",
                             body=pack_value({"key": "k", "value": [1, "two", None]}))
    assert outcome == {"ok": True, "result": None}
    assert world.intruder("get_state", "k") == {"ok": True, "result": [1, "two", None]}


@pytest.mark.skipif(os.getuid() != 0, reason="worker_user needs a root supervisor")
def test_with_a_worker_user_what_the_service_makes_is_the_workers_own(tmp_path: Path) -> None:
    """The service runs as root; the worker, as nobody, must still use what it made in its
    data folder with its own code. A hard link there is refused: its worker could have made
    it to a file only root may read."""
    with world_in(tmp_path, hardening={"worker_user": "nobody", "landlock": False}) as world:
        ok(world.intruder("mkdir", "sub"))
        ok(world.intruder("write", "sub/note.txt"))
        assert ok(world.intruder("local", "sub/note.txt", "sub")) == [
            "overwritten by intruder", ["note.txt"]]
        private = world.data / "plugins" / "intruder"
        nobody = private.stat().st_uid
        assert nobody != 0
        assert {(private / p).stat().st_uid for p in ("sub", "sub/note.txt")} == {nobody}
        secret = tmp_path / "root-only.txt"
        secret.write_text("root's")
        secret.chmod(0o600)
        os.link(secret, private / "linked.txt")
        assert "hard links" in refused(world.intruder("read", "linked.txt"))
