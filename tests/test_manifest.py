"""Manifest parsing: every bad-manifest kind is refused naming the file and the field."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generated_plugins import COMMANDS, generate
from spec_kit_runtime.errors import ManifestError
from spec_kit_runtime.plugins.manifest import MAX_MANIFEST_BYTES, read_manifest
from spec_kit_runtime.plugins.manifest_fields import parse_manifest_data
from spec_kit_runtime.plugins.plugin_info import PluginInfo

PLUGIN_CLASS = """
from spec_kit_contracts import IPluginMetadata, PluginBase


class Plugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="design", version="1.0.0", author="me", description="d")
"""
BASE: dict[str, Any] = {"id": "design", "name": "Design", "version": "1.0.0"}
DROP = object()


def write_plugin(folder: Path, manifest: object, name: str = "plugin.json") -> Path:
    """A plugin folder with ``design_plugin.py`` and a manifest; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "design_plugin.py").write_text(PLUGIN_CLASS)
    path = folder / name
    if isinstance(manifest, str):
        path.write_text(manifest)
    elif name == "plugin.json":
        path.write_text(json.dumps(manifest))
    else:
        path.write_text(yaml.safe_dump(manifest))
    return path


def with_changes(**changes: object) -> dict[str, Any]:
    data = dict(BASE)
    for key, value in changes.items():
        if value is DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def refused(path: Path, field: str | None) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    error = info.value
    assert error.file == str(path)
    assert error.field == field
    assert str(path) in str(error)
    if field is not None:
        assert f"'{field}'" in str(error)
    return error


# --- good manifests -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plugin.json", "plugin.yaml", "plugin.yml"])
def test_minimal_manifest_fills_defaults(tmp_path: Path, name: str) -> None:
    path = write_plugin(tmp_path / "design", BASE, name)
    info = read_manifest(path)
    assert (info.id, info.name, info.version, info.entry_point) == (
        "design",
        "Design",
        "1.0.0",
        "Plugin",
    )
    assert info.path == (tmp_path / "design" / "design_plugin.py").resolve()
    assert info.manifest_path == path
    assert info.root == tmp_path / "design"
    assert (info.sandbox_enabled, info.process_isolated) == (True, False)
    assert (info.allowed_messages, info.dependencies) == ((), ())
    assert info.network is False


def test_full_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "design"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "impl.py").write_text(PLUGIN_CLASS)
    data = with_changes(
        entry_point="DesignPlugin",
        file="src/impl.py",
        sandbox=False,
        process_isolated=True,
        allowed_messages=["command:other:*", "event:build:done"],
        dependencies=["base", "fs"],
        description="d",
        author="a",
        license="MIT",
        homepage="https://example.org",
        capabilities=["generator"],
        config_schema={"type": "object"},
        network=True,
    )
    info = read_manifest(write_plugin(folder, data))
    assert info.network is True
    assert info.path == (folder / "src" / "impl.py").resolve()
    assert info.entry_point == "DesignPlugin"
    assert (info.sandbox_enabled, info.process_isolated) == (False, True)
    assert info.allowed_messages == ("command:other:*", "event:build:done")
    assert info.dependencies == ("base", "fs")
    assert info.manifest["capabilities"] == ["generator"]  # unknown keys are kept
    assert info.manifest["config_schema"] == {"type": "object"}


def test_name_is_the_id_when_it_is_a_valid_id(tmp_path: Path) -> None:
    info = read_manifest(write_plugin(tmp_path / "d", with_changes(id=DROP, name="design")))
    assert info.id == "design"


def test_yaml_manifest_with_anchor_and_comments(tmp_path: Path) -> None:
    text = "# design\nid: design\nname: Design\nversion: 1.2.3-rc.1+b5\nsandbox: false\n"
    info = read_manifest(write_plugin(tmp_path / "d", text, "plugin.yaml"))
    assert (info.version, info.sandbox_enabled) == ("1.2.3-rc.1+b5", False)


def test_json_with_utf8_bom(tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "d", "")
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    assert read_manifest(path).id == "design"


def test_bare_plugin_file(tmp_path: Path) -> None:
    path = tmp_path / "audit_plugin.py"
    path.write_text(
        "PLUGIN_INFO = {'id': 'audit', 'name': 'Audit', 'version': '0.1.0',"
        " 'allowed_messages': ['hook:*']}\n" + PLUGIN_CLASS
    )
    info = read_manifest(path)
    assert (info.id, info.path, info.root) == ("audit", path.resolve(), tmp_path)
    assert info.manifest["file"] == "audit_plugin.py"
    assert info.allowed_messages == ("hook:*",)


def test_bare_plugin_annotated_assignment(tmp_path: Path) -> None:
    path = tmp_path / "audit_plugin.py"
    path.write_text(
        "from typing import Any\n"
        "PLUGIN_INFO: dict[str, Any] = {'name': 'audit', 'version': '1.0.0'}\n" + PLUGIN_CLASS
    )
    assert read_manifest(path).id == "audit"


@pytest.mark.parametrize("name", ["plugin.json", "plugin.yaml"])
def test_to_manifest_round_trip(tmp_path: Path, name: str) -> None:
    data = with_changes(allowed_messages=["command:x:*"], extra={"k": 1},
                        dependencies=["foo[bar]>=2; python_version > '3'", "base"])
    info = read_manifest(write_plugin(tmp_path / "design", data, name))
    assert info.requirements == ("foo[bar]>=2; python_version > '3'",)
    wire = json.loads(json.dumps(info.to_manifest()))  # survives a plain-data transport
    assert info.manifest_path is not None
    again = parse_manifest_data(wire, info.manifest_path, info.root)
    assert again == info
    assert hash(again) == hash(info)


def test_dependencies_hold_plugin_ids_and_package_requirements(tmp_path: Path) -> None:
    entries = ["spec-kit-contracts>=1.0.0", "base", "foo[bar]>=2; python_version>'3'",
               "requests", "PyYAML>=0", "bar @ https://example.org/bar-1.0.whl", "fs"]
    info = read_manifest(write_plugin(tmp_path / "design", with_changes(dependencies=entries)))
    assert info.dependencies == ("base", "requests", "fs")  # a bare valid id is a plugin
    assert info.requirements == ("spec-kit-contracts>=1.0.0", "foo[bar]>=2; python_version>'3'",
                                 "PyYAML>=0", "bar @ https://example.org/bar-1.0.whl")
    assert info.manifest["dependencies"] == [*info.dependencies, *info.requirements]


def test_generated_manifest_is_read_whole(tmp_path: Path) -> None:
    """What Spec-Kit's generator writes (plus a ``commands`` list) is accepted, every field
    kept in ``manifest``, the requirement apart from the plugin dependencies."""
    folder = generate(tmp_path, commands=COMMANDS)
    written = json.loads((folder / "plugin.json").read_text())
    info = read_manifest(folder / "plugin.json")
    assert (info.id, info.entry_point, info.sandbox_enabled) == ("greeter", "GreeterPlugin", False)
    assert info.path == (folder / "src" / "greeter_plugin" / "plugin.py").resolve()
    assert info.root == folder
    assert (info.dependencies, info.requirements) == ((), ("spec-kit-contracts>=1.0.0",))
    assert info.allowed_messages == ("command:greeter:*", "event:system:*")
    assert {"capabilities", "config_schema", "commands", "author", "description",
            "process_isolated"} <= set(written)
    for key, value in written.items():
        assert info.manifest[key] == value, key
    wire = json.loads(json.dumps(info.to_manifest()))
    assert info.manifest_path is not None
    assert parse_manifest_data(wire, info.manifest_path, info.root) == info


def test_to_manifest_round_trip_of_changed_dependencies(tmp_path: Path) -> None:
    info = read_manifest(write_plugin(tmp_path / "d", with_changes(dependencies=["a", "b>=1"])))
    changed = dataclasses.replace(info, dependencies=("c",), requirements=("d<2", "e[x]"))
    assert changed.manifest_path is not None
    again = parse_manifest_data(changed.to_manifest(), changed.manifest_path, changed.root)
    assert (again.dependencies, again.requirements) == (("c",), ("d<2", "e[x]"))


def test_to_manifest_round_trip_bare_file(tmp_path: Path) -> None:
    path = tmp_path / "audit_plugin.py"
    path.write_text("PLUGIN_INFO = {'name': 'audit', 'version': '1.0.0'}\n" + PLUGIN_CLASS)
    info = read_manifest(path)
    assert info.manifest_path is not None
    assert parse_manifest_data(info.to_manifest(), info.manifest_path, info.root) == info


def test_to_manifest_is_a_copy(tmp_path: Path) -> None:
    info = read_manifest(write_plugin(tmp_path / "d", with_changes(extra={"k": [1]})))
    data = info.to_manifest()
    data["extra"]["k"].append(2)
    assert info.manifest["extra"] == {"k": [1]}


def test_plugin_info_is_frozen(tmp_path: Path) -> None:
    info = read_manifest(write_plugin(tmp_path / "d", BASE))
    with pytest.raises(AttributeError):
        info.id = "other"  # type: ignore[misc]


def test_hand_built_info_root_uses_path() -> None:
    info = PluginInfo("x", "x", "1.0.0", Path("/p/x/x_plugin.py"), "Plugin", {})
    assert info.root == Path("/p/x")


# --- bad field values ------------------------------------------------------------------------

BAD_FIELDS: list[tuple[str, dict[str, object], str, str]] = [
    # (case, changes, field, words in the reason)
    ("id uppercase", {"id": "desIgn"}, "id", "may contain only"),
    ("id capitalised", {"id": "Design"}, "id", "must start with"),
    ("id leading dash", {"id": "-design"}, "id", "must start with"),
    ("id too long", {"id": "a" * 65}, "id", "longer than 64"),
    ("id empty", {"id": ""}, "id", "empty"),
    ("id path chars", {"id": "../design"}, "id", "must start with"),
    ("id slash", {"id": "de/sign"}, "id", "may contain only"),
    ("id unicode", {"id": "désign"}, "id", "may contain only"),
    ("id int", {"id": 7}, "id", "must be a string, got int"),
    ("id missing, bad name", {"id": DROP, "name": "Design Tool"}, "id", "not a valid plugin id"),
    ("name missing", {"name": DROP}, "name", "required"),
    ("name int", {"name": 3}, "name", "must be a string, got int"),
    ("name empty", {"name": "  "}, "name", "empty"),
    ("name too long", {"name": "n" * 129}, "name", "longer than 128"),
    ("name control char", {"name": "a\nb"}, "name", "control"),
    ("version missing", {"version": DROP}, "version", "required"),
    ("version int", {"version": 1}, "version", "must be a string, got int"),
    ("version float", {"version": 1.0}, "version", "must be a string, got float"),
    ("version two parts", {"version": "1.0"}, "version", "not a semantic version"),
    ("version leading zero", {"version": "01.0.0"}, "version", "not a semantic version"),
    ("version v prefix", {"version": "v1.0.0"}, "version", "not a semantic version"),
    ("version latest", {"version": "latest"}, "version", "not a semantic version"),
    ("entry_point dotted", {"entry_point": "a.B"}, "entry_point", "not a Python identifier"),
    ("entry_point list", {"entry_point": ["Plugin"]}, "entry_point", "got list"),
    ("entry_point empty", {"entry_point": ""}, "entry_point", "not a Python identifier"),
    ("sandbox string", {"sandbox": "yes"}, "sandbox", "must be true or false, got str"),
    ("sandbox int", {"sandbox": 1}, "sandbox", "must be true or false, got int"),
    ("sandbox null", {"sandbox": None}, "sandbox", "got null"),
    ("process_isolated int", {"process_isolated": 0}, "process_isolated", "got int"),
    ("network string", {"network": "yes"}, "network", "must be true or false, got str"),
    ("file int", {"file": 5}, "file", "must be a string, got int"),
    ("file dotdot", {"file": "../design_plugin.py"}, "file", "inside the plugin folder"),
    ("file deep dotdot", {"file": "a/../../x_plugin.py"}, "file", "inside the plugin folder"),
    ("file absolute", {"file": "/etc/passwd"}, "file", "absolute"),
    ("file nul", {"file": "design_plugin.py\x00"}, "file", "NUL"),
    ("file empty", {"file": ""}, "file", "empty"),
    ("file missing", {"file": "nope_plugin.py"}, "file", "does not exist"),
    ("file default missing", {"id": "other"}, "file", "'other_plugin.py' does not exist"),
    ("file not python", {"file": "plugin.json"}, "file", "not a .py file"),
    (
        "allowed_messages string",
        {"allowed_messages": "command:*"},
        "allowed_messages",
        "must be a list of strings, got str",
    ),
    (
        "allowed_messages int item",
        {"allowed_messages": ["a:*", 3]},
        "allowed_messages",
        "item 1: must be a string",
    ),
    ("allowed_messages glob", {"allowed_messages": ["command:[ab]"]}, "allowed_messages", "item 0"),
    (
        "allowed_messages space",
        {"allowed_messages": ["command: x"]},
        "allowed_messages",
        "may contain only",
    ),
    ("allowed_messages empty item", {"allowed_messages": [""]}, "allowed_messages", "empty"),
    (
        "allowed_messages too long",
        {"allowed_messages": ["a" * 300]},
        "allowed_messages",
        "longer than",
    ),
    ("dependencies dict", {"dependencies": {"base": "1.0"}}, "dependencies", "got dict"),
    ("dependencies bad id", {"dependencies": ["Core"]}, "dependencies", "item 0"),
    (
        "dependencies object item",
        {"dependencies": [{"id": "base"}]},
        "dependencies",
        "must be a string, got dict",
    ),
    (
        "dependencies duplicate",
        {"dependencies": ["base", "base"]},
        "dependencies",
        "more than once",
    ),
    ("dependencies self", {"dependencies": ["design"]}, "dependencies", "itself"),
    (
        "dependencies bad requirement",
        {"dependencies": ["base", "spec-kit-contracts>="]},
        "dependencies",
        "item 1: 'spec-kit-contracts>=' is neither a plugin id nor a valid PEP 508 requirement",
    ),
    (
        "dependencies bad marker",
        {"dependencies": ["foo>=1; python_version ~ '3'"]},
        "dependencies",
        "Expected marker operator",
    ),
    (
        "dependencies bare package name",
        {"dependencies": ["PyYAML"]},
        "dependencies",
        "item 0: 'PyYAML' must start with a lowercase letter",
    ),
    (
        "dependencies duplicate requirement",
        {"dependencies": ["foo>=1", "foo>=1"]},
        "dependencies",
        "lists 'foo>=1' more than once",
    ),
    ("description int", {"description": 1}, "description", "must be a string"),
    ("author list", {"author": ["a"]}, "author", "must be a string"),
    ("license null", {"license": None}, "license", "got null"),
    ("homepage bool", {"homepage": True}, "homepage", "got bool"),
]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [pytest.param(c, f, w, id=case) for case, c, f, w in BAD_FIELDS],
)
@pytest.mark.parametrize("name", ["plugin.json", "plugin.yaml"])
def test_bad_field_is_refused(
    tmp_path: Path, name: str, changes: dict[str, object], field: str, words: str
) -> None:
    path = write_plugin(tmp_path / "design", with_changes(**changes), name)
    error = refused(path, field)
    assert words in error.context["reason"]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        pytest.param(c, f, w, id=case)
        for case, c, f, w in BAD_FIELDS
        if case != "file default missing"  # a bare plugin's file defaults to itself
    ],
)
def test_bad_field_in_bare_plugin_is_refused(
    tmp_path: Path, changes: dict[str, object], field: str, words: str
) -> None:
    data = with_changes(**changes)
    if field != "file":
        data.setdefault("file", "design_plugin.py")
    path = tmp_path / "design_plugin.py"
    path.write_text(f"PLUGIN_INFO = {data!r}\n" + PLUGIN_CLASS)
    error = refused(path, field)
    assert words in error.context["reason"]


# --- file escapes through symlinks ---------------------------------------------------------------


def test_file_symlink_pointing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "evil.py"
    outside.write_text("import os\n")
    folder = tmp_path / "design"
    path = write_plugin(folder, with_changes(file="link_plugin.py"))
    (folder / "link_plugin.py").symlink_to(outside)
    refused(path, "file")


def test_file_through_symlinked_folder_outside(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "impl.py").write_text("x = 1\n")
    folder = tmp_path / "design"
    path = write_plugin(folder, with_changes(file="src/impl.py"))
    (folder / "src").symlink_to(tmp_path / "lib", target_is_directory=True)
    refused(path, "file")


def test_file_symlink_inside_folder_is_fine(tmp_path: Path) -> None:
    folder = tmp_path / "design"
    path = write_plugin(folder, with_changes(file="alias.py"))
    (folder / "alias.py").symlink_to(folder / "design_plugin.py")
    assert read_manifest(path).path == (folder / "design_plugin.py").resolve()


def test_file_that_is_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "design"
    path = write_plugin(folder, with_changes(file="pkg.py"))
    (folder / "pkg.py").mkdir()
    refused(path, "file")


def test_manifest_symlink_escaping_its_folder(tmp_path: Path) -> None:
    real = write_plugin(tmp_path / "elsewhere", BASE)
    folder = tmp_path / "design"
    folder.mkdir()
    (folder / "design_plugin.py").write_text(PLUGIN_CLASS)
    (folder / "plugin.json").symlink_to(real)
    error = refused(folder / "plugin.json", None)
    assert "symbolic link" in str(error)


# --- malformed or oversized files ----------------------------------------------------------------

MALFORMED: list[tuple[str, str, str | None, str]] = [
    # (manifest file name, content, field, words)
    ("plugin.json", '{"id": "design", "name": ', None, "malformed JSON at line 1"),
    ("plugin.json", '{"id": "design",\n "name": "x",}', None, "line 2"),
    ("plugin.json", "[1, 2]", None, "must be a mapping of fields, got list"),
    ("plugin.json", '"design"', None, "got str"),
    ("plugin.json", "", None, "malformed JSON"),
    (
        "plugin.json",
        '{"id": "design", "id": "other", "name": "x", "version": "1.0.0"}',
        "id",
        "more than once",
    ),
    ("plugin.json", '{"id": "design", "name": "Design", "version": NaN}', "version", "NaN"),
    (
        "plugin.json",
        '{"id": "design", "name": "Design", "version": "1.0.0", "w": Infinity}',
        "w",
        "NaN and Infinity",
    ),
    (
        "plugin.json",
        '{"id": "design", "name": "Design", "version": "1.0.0", "w": 1e999}',
        "w",
        "Infinity",
    ),
    ("plugin.json", "[" * 5000 + "]" * 5000, None, "malformed JSON"),
    ("plugin.yaml", "id: design\nname: [unclosed\n", None, "malformed YAML at line"),
    ("plugin.yaml", "id: design\n  name: x\n", None, "malformed YAML at line 2"),
    ("plugin.yaml", "- id: design\n- name: x\n", None, "must be a mapping of fields, got list"),
    ("plugin.yaml", "just text\n", None, "got str"),
    ("plugin.yaml", "", None, "got null"),
    ("plugin.yml", "id: design\nid: other\nname: x\nversion: 1.0.0\n", None, "duplicate key"),
    ("plugin.yaml", "id: design\nname: Design\nversion: 1.0.0\nw: .nan\n", "w", "NaN"),
    (
        "plugin.yaml",
        "id: design\nname: Design\nversion: 1.0.0\nwhen: 2024-01-01\n",
        "when",
        "got date",
    ),
    (
        "plugin.yaml",
        "id: design\nname: Design\nversion: 1.0.0\n1: x\n",
        "1",
        "field names must be strings",
    ),
    (
        "plugin.yaml",
        "id: design\nname: Design\nversion: 1.0.0\nx: !!python/object:os.system {}\n",
        None,
        "malformed YAML",
    ),
    (
        "plugin.yaml",
        "id: design\nname: Design\nversion: 1.0.0\nx: &a [*a]\n",
        "x",
        "nested too deeply",
    ),
    (
        "plugin.yaml",
        "id: design\nname: Design\nversion: 1.0.0\nx: {1: a}\n",
        "x",
        "keys must be strings",
    ),
]


@pytest.mark.parametrize(("name", "content", "field", "words"), MALFORMED)
def test_malformed_manifest(
    tmp_path: Path, name: str, content: str, field: str | None, words: str
) -> None:
    path = write_plugin(tmp_path / "design", content, name)
    error = refused(path, field)
    assert words in str(error)


def test_yaml_billion_laughs_is_bounded(tmp_path: Path) -> None:
    lines = ["id: design", "name: Design", "version: 1.0.0", "a0: &a0 [x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]" for i in range(1, 9)]
    path = write_plugin(tmp_path / "design", "\n".join(lines) + "\n", "plugin.yaml")
    error = refused(path, "a4")  # 8**5 items: over the walk budget
    assert "too large" in str(error)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "design", BASE)
    path.write_bytes(b'{"id": "d\xff"}')
    assert "UTF-8" in str(refused(path, None))


@pytest.mark.parametrize("name", ["plugin.json", "plugin.yaml"])
def test_oversized_manifest_is_refused_before_reading(tmp_path: Path, name: str) -> None:
    path = write_plugin(tmp_path / "design", BASE, name)
    padding = " " * (65 * 1024)
    path.write_text(json.dumps(BASE)[:-1] + padding + "}")
    assert os.stat(path).st_size > MAX_MANIFEST_BYTES
    error = refused(path, None)
    assert "byte limit" in str(error)


def test_oversized_bare_plugin_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big_plugin.py"
    path.write_text("PLUGIN_INFO = {'name': 'big', 'version': '1.0.0'}\n" + "#" * (1 << 20))
    assert "byte limit" in str(refused(path, None))


def test_manifest_that_is_not_a_regular_file(tmp_path: Path) -> None:
    folder = tmp_path / "design"
    folder.mkdir()
    os.mkfifo(folder / "plugin.json")
    assert "not a regular file" in str(refused(folder / "plugin.json", None))


def test_missing_manifest(tmp_path: Path) -> None:
    assert "cannot open" in str(refused(tmp_path / "plugin.json", None))


def test_unsupported_file_name(tmp_path: Path) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text("")
    assert "not a manifest" in str(refused(path, None))


def test_parse_manifest_data_names_the_source(tmp_path: Path) -> None:
    source = tmp_path / "remote.json"
    with pytest.raises(ManifestError) as info:
        parse_manifest_data({"id": "x", "name": "x", "version": 1}, source, tmp_path)
    assert (info.value.file, info.value.field) == (str(source), "version")


@pytest.mark.parametrize("data", [None, [], "x", 1, {1: "x"}])
def test_parse_manifest_data_needs_a_str_keyed_mapping(tmp_path: Path, data: object) -> None:
    with pytest.raises(ManifestError):
        parse_manifest_data(data, tmp_path / "plugin.json", tmp_path)


# --- bare plugins are parsed, never run -----------------------------------------------------


def marker_source(marker: Path, info_expr: str) -> str:
    return (
        "import pathlib\n"
        f"def touch():\n    pathlib.Path({str(marker)!r}).write_text('ran')\n"
        f"    return {{'name': 'evil', 'version': '1.0.0'}}\n"
        f"touch()\n"
        f"PLUGIN_INFO = {info_expr}\n" + PLUGIN_CLASS
    )


BARE_BAD: list[tuple[str, str]] = [
    # (PLUGIN_INFO expression, words)
    ("touch()", "function call"),
    ("dict(name='evil', version='1.0.0')", "function call"),
    ("{'name': 'evil', 'version': touch()['version']}", "subscript"),
    ("{'name': NAME, 'version': '1.0.0'}", "variable name"),
    ("{'name': 'evil', 'version': f'{1}.0.0'}", "f-string"),
    ("{'name': 'evil', 'version': '1.0.0', **touch()}", "function call"),
    ("{'name': 'evil', 'version': '1.0.0', 'x': (lambda: 1)}", "lambda"),
    ("{'name': 'evil', 'version': '1.0.0', 'x': [i for i in 'ab']}", "ListComp"),
    ("{'name': 'evil', 'version': '1.0.0', 'x': 1 + 2}", "not a plain literal"),
]


@pytest.mark.parametrize(("expr", "words"), BARE_BAD)
def test_non_literal_plugin_info_is_never_executed(tmp_path: Path, expr: str, words: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil_plugin.py"
    path.write_text(marker_source(marker, expr))
    error = refused(path, "PLUGIN_INFO")
    assert words in str(error)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("source", "field", "words"),
    [
        ("x = 1\n", "PLUGIN_INFO", "no top-level PLUGIN_INFO"),
        (
            "if True:\n    PLUGIN_INFO = {'name': 'a', 'version': '1.0.0'}\n",
            "PLUGIN_INFO",
            "no top-level",
        ),
        (
            "PLUGIN_INFO = {'name': 'a', 'version': '1.0.0'}\nPLUGIN_INFO = {}\n",
            "PLUGIN_INFO",
            "more than once",
        ),
        ("PLUGIN_INFO: dict\n", "PLUGIN_INFO", "no top-level"),
        ("PLUGIN_INFO = ['a']\n", None, "must be a mapping of fields, got list"),
        ("PLUGIN_INFO = {'name': 'a', 'version': '1.0.0', 'x': {1, 2}}\n", "x", "set"),
        ("PLUGIN_INFO = {'name': 'a', 'version': '1.0.0', 'x': b'raw'}\n", "x", "bytes"),
        ("PLUGIN_INFO = {'name': 'a', 'version': '1.0.0', 'x': (1, 2)}\n", "x", "tuple"),
        (
            "PLUGIN_INFO = {'name': 'a', 'version': '1.0.0', 'allowed_messages': ('a',)}\n",
            "allowed_messages",
            "got tuple",
        ),
        ("def broken(:\n", None, "not valid Python at line 1"),
    ],
)
def test_bad_bare_plugin(tmp_path: Path, source: str, field: str | None, words: str) -> None:
    path = tmp_path / "a_plugin.py"
    path.write_text(source)
    assert words in str(refused(path, field))


def test_bare_plugin_is_not_imported(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "ok_plugin.py"
    path.write_text(marker_source(marker, "{'name': 'ok', 'version': '1.0.0'}"))
    assert read_manifest(path).id == "ok"
    assert not marker.exists()


# --- property: any data gives a PluginInfo or a ManifestError, nothing else ------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    [
        "id",
        "name",
        "version",
        "entry_point",
        "file",
        "sandbox",
        "process_isolated",
        "allowed_messages",
        "dependencies",
        "description",
        "other",
    ]
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(changes=st.dictionaries(FIELDS, JSON_VALUES | st.just(DROP), max_size=4))
def test_any_data_is_accepted_or_refused_cleanly(
    tmp_path: Path, changes: dict[str, object]
) -> None:
    (tmp_path / "design_plugin.py").write_text(PLUGIN_CLASS)
    data = with_changes(**changes)
    source = tmp_path / "plugin.json"
    try:
        info = parse_manifest_data(data, source, tmp_path)
    except ManifestError as error:
        assert error.file == str(source)
        required = {"id", "name", "version", "file"}  # may be named while absent
        assert error.field is None or error.field in set(data) | required
    else:
        assert info.manifest_path is not None
        assert parse_manifest_data(info.to_manifest(), info.manifest_path, info.root) == info
