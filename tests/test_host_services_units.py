"""The host services' pure parts, without sockets: state store, config view, log lines, the
dispatcher's argument checks, and the config keys that set them up."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from spec_kit_runtime.errors import ConfigError, ProtocolError, ServiceError
from spec_kit_runtime.plugins.config import RuntimeConfig, config_from_data
from spec_kit_runtime.policy.file_roots import Root
from spec_kit_runtime.policy.output_budget import OutputBudget
from spec_kit_runtime.supervisor.host_services.config_view import ConfigView
from spec_kit_runtime.supervisor.host_services.dispatch import HostServices, _arguments
from spec_kit_runtime.supervisor.host_services.logging_service import log_lines
from spec_kit_runtime.supervisor.host_services.state import StateStore
from spec_kit_runtime.wire.codec import pack_value
from spec_kit_runtime.wire.protocol import ServiceCall

# -- state ---------------------------------------------------------------------------------


def test_state_round_trips_wire_values_and_persists_atomically(tmp_path: Path) -> None:
    file = tmp_path / "p.msgpack"
    store = StateStore(file, 4096)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.set("k", {"list": [1, 2.5, None], "when": when, "pair": (1, "a"), "raw": b"\x00"})
    assert store.get("k") == (True, {"list": [1, 2.5, None], "when": when, "pair": (1, "a"),
                                     "raw": b"\x00"})
    assert store.get("absent") == (False, None)
    assert not file.exists()  # only on persist
    store.persist()
    assert file.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "p.msgpack.tmp").exists()
    again = StateStore(file, 4096)
    assert again.get("k")[1]["when"] == when
    again.clear("k")
    again.persist()
    assert StateStore(file, 4096).get("k") == (False, None)


def test_state_is_written_only_when_changed(tmp_path: Path) -> None:
    file = tmp_path / "p.msgpack"
    store = StateStore(file, 4096)
    store.get("x")
    store.clear(None)  # nothing to clear: still clean
    store.persist()
    assert not file.exists()
    store.set("x", 1)
    store.persist()
    written = file.stat().st_ino
    store.persist()
    assert file.stat().st_ino == written  # not written again (a write renames a new file in)
    store.set("x", 2)
    store.persist()
    assert file.stat().st_ino != written


def test_state_quota_counts_keys_and_values_and_refuses_whole(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "p.msgpack", 2000)
    store.set("a", "x" * 900)
    with pytest.raises(ServiceError, match="state_max_bytes"):
        store.set("b", "y" * 1200)
    assert store.get("b") == (False, None)
    store.set("a", "x" * 1900)  # replacing counts the new value only
    store.clear("a")
    store.set("b", "y" * 1900)
    with pytest.raises(ServiceError, match="1 to 1024"):
        store.set("", 1)


@pytest.mark.parametrize("content", [b"\xc1", pack_value([1, 2]), pack_value({"format": 99}),
                                     pack_value({"format": 1, "values": {"k": 1}})])
def test_an_unreadable_state_file_is_refused_not_replaced(tmp_path: Path, content: bytes) -> None:
    file = tmp_path / "p.msgpack"
    file.write_bytes(content)
    store = StateStore(file, 4096)
    with pytest.raises(ServiceError, match="unreadable"):
        store.get("k")
    with pytest.raises(ServiceError, match="unreadable"):
        store.set("k", 1)
    assert file.read_bytes() == content


def test_a_state_file_far_over_the_limit_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "p.msgpack"
    file.write_bytes(b"\0" * (1024 + (1 << 16) + 1))
    with pytest.raises(ServiceError, match=r"more than runtime\.state_max_bytes"):
        StateStore(file, 1024).get("k")


# -- config view ---------------------------------------------------------------------------

SECTION = {"author": "Spec-Kit", "output": {"format": "md", "width": 80}, "tags": ["a"]}


@pytest.mark.parametrize(("key", "expected"), [
    ("author", (True, "Spec-Kit")),
    ("output.format", (True, "md")),
    ("output", (True, {"format": "md", "width": 80})),
    ("output.missing", (False, None)),
    ("author.deeper", (False, None)),  # a value is not a section
    ("tags", (True, ["a"])),
    ("missing", (False, None)),
])
def test_config_get_by_dot_notation(key: str, expected: tuple[bool, Any]) -> None:
    assert ConfigView(SECTION, 4096).get(key) == expected


@pytest.mark.parametrize("key", ["", ".", "a..b", "a.", "x" * 1025])
def test_config_keys_must_be_names(key: str) -> None:
    with pytest.raises(ServiceError, match="dot-separated"):
        ConfigView(SECTION, 4096).get(key)


def test_config_set_changes_the_view_only() -> None:
    original = {"output": {"format": "md"}}
    view = ConfigView(original, 4096)
    view.set("output.format", "html")
    view.set("new.deep.key", 1)
    assert view.get_section("output") == {"format": "html"}
    assert view.get("new.deep.key") == (True, 1)
    assert original == {"output": {"format": "md"}}
    section = view.get_section("output")
    section["format"] = "changed by the caller"
    assert view.get("output.format") == (True, "html")
    assert view.get_section("missing") == {}
    with pytest.raises(ServiceError, match="not a section"):
        view.get_section("output.format")
    with pytest.raises(ServiceError, match="not a section"):
        view.set("output.format.x", 1)
    with pytest.raises(ServiceError, match="refused"):
        ConfigView({}, 64).set("big", "x" * 100)
    with pytest.raises(ServiceError, match="save is refused"):
        view.save()


def test_a_refused_set_changes_nothing() -> None:
    view = ConfigView({"a": 1}, 64)
    with pytest.raises(ServiceError):
        view.set("new.section.big", "x" * 100)
    assert view.get("new") == (False, None)


# -- log lines -----------------------------------------------------------------------------


def test_log_lines_are_tagged_split_and_within_budget(caplog: pytest.LogCaptureFixture) -> None:
    budget = OutputBudget(rate=100.0, burst=200.0)
    with caplog.at_level(logging.INFO, logger="spec_kit_runtime.plugin"):
        assert log_lines("notes", budget, "WARNING", "two\nlines", {"n": "1"}, 0.0) == 2
        assert log_lines("notes", budget, "DEBUG", "below the level", {}, 0.0) == 0
        assert log_lines("notes", budget, "INFO", "x" * 150, {}, 0.0) == 0  # over budget
    assert [(r.levelname, r.getMessage(), r.plugin, r.stream)  # type: ignore[attr-defined]
            for r in caplog.records] == [("WARNING", "[notes] two", "notes", "log"),
                                         ("WARNING", "[notes] lines n=1", "notes", "log")]
    assert budget.dropped_lines == 1 and budget.logged_bytes == len("two\nlines n=1") + 1
    with pytest.raises(ServiceError, match="log level"):
        log_lines("notes", budget, "LOUD", "x", {}, 0.0)


# -- the dispatcher's argument checks ------------------------------------------------------


def _services(tmp_path: Path, **settings: Any) -> HostServices:
    config = RuntimeConfig(data_dir=tmp_path / "data", **settings)
    return HostServices(config, tmp_path / "rt", lambda: 0.0)


@pytest.mark.parametrize(("service", "method", "body", "why"), [
    ("filesystem", "read_file", pack_value({"path": "a"}), None),
    ("filesystem", "read_file", pack_value({"path": 1}), "'path' must be a string"),
    ("filesystem", "read_file", pack_value({"path": b"a"}), "'path' must be a string"),
    ("filesystem", "read_file", pack_value({}), "takes a map of \\['path'\\]"),
    ("filesystem", "read_file", pack_value({"path": "a", "plugin": "other"}), "takes a map"),
    ("filesystem", "read_file", pack_value(["a"]), "got list"),
    ("filesystem", "read_file", b"", "got NoneType"),
    ("filesystem", "create_directory", pack_value({"path": "a", "parents": 1}),
     "'parents' must be true or false"),
    ("state", "clear_state", pack_value({"key": None}), None),
    ("state", "set_state", pack_value({"key": "k", "value": {"any": ["thing"]}}), None),
    ("logging", "log", pack_value({"level": "INFO", "message": "m", "fields": {"a": 1}}),
     "'fields' must be a map of strings to strings"),
])
def test_arguments_are_exactly_the_methods(tmp_path: Path, service: str, method: str,
                                           body: bytes, why: str | None) -> None:
    services = _services(tmp_path)
    try:
        spec = services._methods[(service, method)]
        if why is None:
            assert _arguments(ServiceCall(1, service, method, body), spec)
        else:
            with pytest.raises(ServiceError, match=why):
                _arguments(ServiceCall(1, service, method, body), spec)
    finally:
        services.close()


def test_a_malformed_body_is_a_protocol_error(tmp_path: Path) -> None:
    services = _services(tmp_path)
    try:
        spec = services._methods[("filesystem", "read_file")]
        with pytest.raises(ProtocolError, match="malformed body"):
            _arguments(ServiceCall(1, "filesystem", "read_file", b"\xc1"), spec)
    finally:
        services.close()


# -- config keys ---------------------------------------------------------------------------


def test_filesystem_roots_are_resolved_and_checked(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "file").write_text("")
    source = tmp_path / "runtime.yaml"
    config = config_from_data({
        "runtime": {"data_dir": "data", "state_max_bytes": 2048},
        "plugins": {"p": {"filesystem": [{"path": "docs"},
                                         {"path": str(tmp_path / "out"), "writable": True}]}},
    }, source)
    assert config.data_dir == tmp_path / "data"
    assert config.state_max_bytes == 2048
    assert config.settings_for("p").filesystem == (Root(str(tmp_path / "docs"), False),
                                                   Root(str(tmp_path / "out"), True))
    for entry, why in [
        ({"filesystem": {"path": "docs"}}, "must be a list"),
        ({"filesystem": ["docs"]}, "must be a mapping with 'path'"),
        ({"filesystem": [{"path": "docs", "mode": "rw"}]}, "must be a mapping with 'path'"),
        ({"filesystem": [{"path": ""}]}, "path must be a path"),
        ({"filesystem": [{"path": "docs", "writable": "yes"}]}, "writable must be true or"),
        ({"filesystem": [{"path": "missing"}]}, "'missing' cannot be used"),
        ({"filesystem": [{"path": "file"}]}, "'file' is not a folder"),
        ({"files": []}, "may only hold"),
    ]:
        with pytest.raises(ConfigError, match=why):
            config_from_data({"plugins": {"p": entry}}, source)
    with pytest.raises(ConfigError, match="state_max_bytes' must be an integer"):
        config_from_data({"runtime": {"state_max_bytes": 10}}, source)


@pytest.mark.parametrize("root", ["", "data", "data/plugins", "rt"])
def test_roots_may_not_reach_the_data_or_runtime_directory(tmp_path: Path, root: str) -> None:
    (tmp_path / "data" / "plugins").mkdir(parents=True)
    (tmp_path / "rt").mkdir()
    config = config_from_data({"runtime": {"data_dir": "data"},
                               "plugins": {"p": {"filesystem": [{"path": root or "."}]}}},
                              tmp_path / "runtime.yaml")
    with pytest.raises(ConfigError, match=r"plugins\.p\.filesystem\[0\]"):
        HostServices(config, tmp_path / "rt", lambda: 0.0)


def test_a_read_only_root_may_not_nest_in_a_writable_one(tmp_path: Path) -> None:
    """Found by a review: '/proj/./vendor/x' picked the writable root and wrote (and could
    delete) the read-only folder inside it."""
    (tmp_path / "proj" / "vendor").mkdir(parents=True)
    source = tmp_path / "runtime.yaml"
    for roots in ([{"path": "proj", "writable": True}, {"path": "proj/vendor"}],
                  [{"path": "proj/vendor", "writable": True}, {"path": "proj"}]):
        with pytest.raises(ConfigError, match="nests with"):
            config_from_data({"plugins": {"p": {"filesystem": roots}}}, source)
    same = [{"path": "proj"}, {"path": "proj/vendor"}]  # both read-only: fine
    assert len(config_from_data({"plugins": {"p": {"filesystem": same}}},
                                source).plugins["p"].filesystem) == 2


def test_a_chain_of_links_cannot_hold_unbounded_descriptors(tmp_path: Path) -> None:
    """Each link may add components; the walk holds a folder fd per level. A chain deeper
    than MAX_DEPTH through links is refused, whatever the path asked for looks like."""
    from spec_kit_runtime.errors import PathRefusedError
    from spec_kit_runtime.supervisor.host_services.filesystem import MAX_DEPTH, FileSystem

    root = tmp_path / "root"
    deep = root.joinpath(*["a"] * (MAX_DEPTH + 10))
    deep.mkdir(parents=True)
    (root / "n").symlink_to("/".join(["a"] * (MAX_DEPTH + 10)))
    files = FileSystem([Root(str(root), True)], 1 << 20)
    with pytest.raises(PathRefusedError, match="folders deep"):
        files.exists("n/x")
    assert files.exists("a/a")  # an ordinary path still works


def test_deeply_nested_arguments_are_refused_before_anything_uses_them(tmp_path: Path) -> None:
    """Found by a review: a value nested past Python's recursion limit (msgpack decodes
    about 1000 levels) made config.set raise RecursionError on the loop, unanswered."""
    from spec_kit_runtime.supervisor.host_services.dispatch import (
        MAX_NESTING,
        _Method,
        _nests_within,
    )

    value: Any = 1
    for _ in range(900):
        value = [value]
    assert not _nests_within(value, MAX_NESTING)
    assert _nests_within([[{"a": [1]}]], MAX_NESTING)
    method = _Method(lambda call: None, "set", (("value", (lambda v: True, "anything")),), False)
    with pytest.raises(ServiceError, match="nest more than"):
        _arguments(ServiceCall(1, "config", "set", pack_value({"value": value})), method)
