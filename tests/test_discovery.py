"""Discovery: walks search paths, collects errors, never runs plugin code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from generated_plugins import generate
from spec_kit_runtime.plugins.discovery import MAX_DEPTH, DiscoveryResult, discover

PLUGIN_CLASS = """
from spec_kit_contracts import IPluginMetadata, PluginBase


class Plugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="p", version="1.0.0", author="me", description="d")
"""


def manifest_plugin(folder: Path, plugin_id: str, version: str = "1.0.0", **extra: object) -> Path:
    """A plugin folder with plugin.json and ``{id}_plugin.py``; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{plugin_id}_plugin.py").write_text(PLUGIN_CLASS)
    path = folder / "plugin.json"
    data = {"id": plugin_id, "name": plugin_id.title(), "version": version, **extra}
    path.write_text(json.dumps(data))
    return path


def bare_plugin(path: Path, plugin_id: str, prelude: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"id": plugin_id, "name": plugin_id, "version": "1.0.0"}
    path.write_text(f"{prelude}PLUGIN_INFO = {info!r}\n{PLUGIN_CLASS}")
    return path


def ids(result: DiscoveryResult) -> list[str]:
    return [info.id for info in result.plugins]


def test_finds_manifest_and_bare_plugins_sorted(tmp_path: Path) -> None:
    manifest_plugin(tmp_path / "zeta", "zeta")
    manifest_plugin(tmp_path / "group" / "design", "design")
    bare_plugin(tmp_path / "audit_plugin.py", "audit")
    bare_plugin(tmp_path / "tools" / "lint_plugin.py", "lint")
    result = discover([tmp_path])
    assert result.errors == ()
    assert ids(result) == ["audit", "design", "lint", "zeta"]
    assert set(result.by_id()) == {"audit", "design", "lint", "zeta"}
    assert result.by_id()["design"].manifest_path == tmp_path / "group" / "design" / "plugin.json"


@pytest.mark.parametrize("name", ["plugin.json", "plugin.yaml", "plugin.yml"])
def test_each_manifest_name(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "design"
    folder.mkdir()
    (folder / "design_plugin.py").write_text(PLUGIN_CLASS)
    (folder / name).write_text('{"id": "design", "name": "Design", "version": "1.0.0"}')
    assert ids(discover([tmp_path])) == ["design"]


def test_plugin_folder_is_not_searched_further(tmp_path: Path) -> None:
    folder = tmp_path / "design"
    manifest_plugin(folder, "design")
    bare_plugin(folder / "helper_plugin.py", "helper")
    manifest_plugin(folder / "nested", "nested")
    result = discover([tmp_path])
    assert ids(result) == ["design"]
    assert result.errors == ()


def test_finds_plugins_as_spec_kit_generates_them(tmp_path: Path) -> None:
    """``specify-extended plugin new``'s layout: plugin.json at the folder's root, code in
    ``src/NAME_plugin/``, and ``tests/test_NAME_plugin.py``, which is no extra plugin."""
    search = tmp_path / ".specify" / "plugins"
    greeter = generate(search, "greeter")
    generate(search, "my-tool")
    assert (greeter / "tests" / "test_greeter_plugin.py").is_file()
    result = discover([search])
    assert result.errors == ()
    assert ids(result) == ["greeter", "my-tool"]
    tool = result.by_id()["my-tool"]
    assert tool.path == (search / "my-tool-plugin" / "src" / "my_tool_plugin" / "plugin.py"
                         ).resolve()
    assert tool.requirements == ("spec-kit-contracts>=1.0.0",)
    for inside in (greeter, greeter / "src", greeter / "tests"):  # searched from within
        found = discover([inside])
        assert (ids(found), found.errors) == (["greeter"] if inside == greeter else [], ())


def test_search_path_that_is_itself_a_plugin_folder(tmp_path: Path) -> None:
    manifest_plugin(tmp_path, "design")
    assert ids(discover([tmp_path])) == ["design"]


def test_two_manifests_in_one_folder_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "design"
    manifest_plugin(folder, "design")
    (folder / "plugin.yaml").write_text("id: design\nname: Design\nversion: 1.0.0\n")
    bare_plugin(folder / "other_plugin.py", "other")
    manifest_plugin(tmp_path / "fine", "fine")
    result = discover([tmp_path])
    assert ids(result) == ["fine"]
    [error] = result.errors
    assert error.file == str(folder)
    assert "plugin.json, plugin.yaml" in str(error)


def test_missing_search_path_is_reported(tmp_path: Path) -> None:
    manifest_plugin(tmp_path / "a" / "design", "design")
    missing = tmp_path / "nope"
    result = discover([missing, tmp_path / "a"])
    assert ids(result) == ["design"]
    [error] = result.errors
    assert (error.file, error.field) == (str(missing), None)
    assert error.context["reason"] == "search path does not exist"


def test_search_path_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    path.write_text("")
    [error] = discover([path]).errors
    assert error.file == str(path)
    assert "not a directory" in str(error)


def test_bad_manifests_are_collected_and_do_not_stop_the_scan(tmp_path: Path) -> None:
    manifest_plugin(tmp_path / "a_bad", "Bad-Id")
    manifest_plugin(tmp_path / "b_bad", "version", version="1.0")
    (tmp_path / "c_bad").mkdir()
    (tmp_path / "c_bad" / "plugin.json").write_text("{not json")
    (tmp_path / "d_bare_plugin.py").write_text("x = 1\n")
    manifest_plugin(tmp_path / "z_good", "good")
    result = discover([tmp_path])
    assert ids(result) == ["good"]
    got = [(Path(e.file).relative_to(tmp_path).as_posix(), e.field) for e in result.errors]
    assert got == [  # a folder's own files come before its subfolders
        ("d_bare_plugin.py", "PLUGIN_INFO"),
        ("a_bad/plugin.json", "id"),
        ("b_bad/plugin.json", "version"),
        ("c_bad/plugin.json", None),
    ]


def test_duplicate_id_in_one_search_path_keeps_the_first(tmp_path: Path) -> None:
    first = manifest_plugin(tmp_path / "a" / "design", "design", version="1.0.0")
    second = manifest_plugin(tmp_path / "b" / "design", "design", version="2.0.0")
    result = discover([tmp_path])
    assert [info.version for info in result.plugins] == ["1.0.0"]
    [error] = result.errors
    assert (error.file, error.field) == (str(second), "id")
    assert str(first) in str(error) and str(second) in str(error)


def test_duplicate_between_manifest_and_bare_plugin(tmp_path: Path) -> None:
    bare = bare_plugin(tmp_path / "design_plugin.py", "design")
    manifest_plugin(tmp_path / "pkg" / "design", "design")
    result = discover([tmp_path])
    assert result.plugins[0].path == bare.resolve()
    assert len(result.errors) == 1


def test_later_search_path_wins(tmp_path: Path) -> None:
    manifest_plugin(tmp_path / "user" / "design", "design", version="1.0.0")
    manifest_plugin(tmp_path / "user" / "audit", "audit")
    manifest_plugin(tmp_path / "project" / "design", "design", version="2.0.0")
    result = discover(iter([tmp_path / "user", tmp_path / "project"]))
    assert result.errors == ()
    assert {info.id: info.version for info in result.plugins} == {
        "audit": "1.0.0",
        "design": "2.0.0",
    }


@pytest.mark.parametrize("folder", [".hidden", "__pycache__", "tests", "test", "a/tests/b"])
def test_skipped_folders(tmp_path: Path, folder: str) -> None:
    manifest_plugin(tmp_path / folder / "design", "design")
    bare_plugin(tmp_path / folder / "audit_plugin.py", "audit")
    result = discover([tmp_path])
    assert result.plugins == () and result.errors == ()


@pytest.mark.parametrize("name", ["test_audit_plugin.py", ".audit_plugin.py", "audit.py"])
def test_skipped_files(tmp_path: Path, name: str) -> None:
    bare_plugin(tmp_path / name, "audit")
    assert discover([tmp_path]) == DiscoveryResult((), ())


def test_symlinked_folders_are_not_followed(tmp_path: Path) -> None:
    manifest_plugin(tmp_path / "elsewhere" / "design", "design")
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert discover([root]) == DiscoveryResult((), ())


def test_symlinked_search_path_itself_is_followed(tmp_path: Path) -> None:
    manifest_plugin(tmp_path / "real" / "design", "design")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert ids(discover([tmp_path / "alias"])) == ["design"]


def test_depth_is_bounded(tmp_path: Path) -> None:
    deepest = tmp_path.joinpath(*[f"d{i}" for i in range(1, MAX_DEPTH + 1)])
    manifest_plugin(deepest, "deep")
    manifest_plugin(deepest / "d_too_deep" / "x", "too-deep")
    bare_plugin(deepest / "d_too_deep" / "far_plugin.py", "far")
    assert ids(discover([tmp_path])) == ["deep"]


def test_no_plugin_code_runs(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    side_effect = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    folder = tmp_path / "plugins" / "design"
    manifest_plugin(folder, "design")
    (folder / "design_plugin.py").write_text(side_effect + PLUGIN_CLASS)
    bare_plugin(tmp_path / "plugins" / "audit_plugin.py", "audit", prelude=side_effect)
    bad = tmp_path / "plugins" / "evil_plugin.py"
    bad.write_text(side_effect + "PLUGIN_INFO = make_info()\n")
    result = discover([tmp_path / "plugins"])
    assert ids(result) == ["audit", "design"]
    assert [(e.file, e.field) for e in result.errors] == [(str(bad), "PLUGIN_INFO")]
    assert not marker.exists()


def test_dangling_symlinked_bare_plugin_is_reported(tmp_path: Path) -> None:
    (tmp_path / "ghost_plugin.py").symlink_to(tmp_path / "missing.py")
    [error] = discover([tmp_path]).errors
    assert error.file == str(tmp_path / "ghost_plugin.py")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_folder_is_reported(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        [error] = discover([tmp_path]).errors
        assert error.file == str(locked)
    finally:
        locked.chmod(0o700)


def test_result_is_deterministic(tmp_path: Path) -> None:
    for name in ["c", "a", "b", "e", "d"]:
        manifest_plugin(tmp_path / name / "p", f"p{name}")
        bare_plugin(tmp_path / name / f"x{name}_plugin.py", f"x{name}")
    manifest_plugin(tmp_path / "f" / "pa", "pa")
    first, second = discover([tmp_path]), discover([tmp_path])
    assert first.plugins == second.plugins
    assert [e.to_data() for e in first.errors] == [e.to_data() for e in second.errors]
    assert ids(first) == sorted(ids(first))
    assert len(first.errors) == 1
