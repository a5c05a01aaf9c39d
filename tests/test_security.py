"""Plugin ids, semantic versions and path containment (symlinks included)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spec_kit_runtime.errors import RuntimeFailure
from spec_kit_runtime.plugins.security import (
    InputValidationError,
    PathTraversalError,
    SecurityError,
    is_semver,
    is_valid_plugin_id,
    plugin_id_problem,
    sanitize_plugin_id,
    validate_path,
    validate_plugin_path,
)

GOOD_IDS = ["a", "0", "design", "py-validator", "audit_hook", "x1", "a" * 64, "9lives"]
BAD_IDS = [
    "",
    "Design",
    "DESIGN",
    "-design",
    "_design",
    "a" * 65,
    "my plugin",
    "../etc",
    "a/b",
    "a\\b",
    "a.b",
    "design\n",
    "dés",
    "\uff44esign",  # fullwidth d
    "a\x00",
    "plugin:x",
]


@pytest.mark.parametrize("value", GOOD_IDS)
def test_valid_ids_pass_unchanged(value: str) -> None:
    assert is_valid_plugin_id(value)
    assert plugin_id_problem(value) is None
    assert sanitize_plugin_id(value) == value


@pytest.mark.parametrize(("value", "whose"), [
    ("system", "supervisor"), ("core", "host application"), ("client", "host application"),
])
def test_reserved_ids_name_whose_they_are(value: str, whose: str) -> None:
    assert not is_valid_plugin_id(value)
    problem = plugin_id_problem(value)
    assert problem is not None and "is reserved" in problem and whose in problem
    assert is_valid_plugin_id(value + "s")  # only the exact names


@pytest.mark.parametrize("value", [*BAD_IDS, "system", "core", "client"])
def test_invalid_ids_are_refused_not_rewritten(value: str) -> None:
    assert not is_valid_plugin_id(value)
    with pytest.raises(InputValidationError) as info:
        sanitize_plugin_id(value)
    assert "invalid plugin id" in str(info.value)


@pytest.mark.parametrize("value", [None, 1, b"design", ["design"], True])
def test_non_string_ids_are_invalid(value: object) -> None:
    assert not is_valid_plugin_id(value)
    problem = plugin_id_problem(value)
    assert problem is not None and "must be a string" in problem


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "empty"),
        ("a" * 65, "longer than 64"),
        ("-x", "must start with"),
        ("aB", "may contain only"),
    ],
)
def test_id_problems_say_why(value: str, words: str) -> None:
    problem = plugin_id_problem(value)
    assert problem is not None and words in problem


def test_error_classes_and_codes() -> None:
    assert issubclass(PathTraversalError, SecurityError)
    assert issubclass(InputValidationError, SecurityError)
    assert issubclass(SecurityError, RuntimeFailure)
    assert (SecurityError.code, PathTraversalError.code, InputValidationError.code) == (
        "security",
        "path_traversal",
        "input_validation",
    )


@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True))
def test_every_id_matching_the_pattern_is_valid(value: str) -> None:
    assert sanitize_plugin_id(value) == value


GOOD_VERSIONS = [
    "0.0.0",
    "1.0.0",
    "10.20.30",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-0.3.7",
    "1.0.0-x.7.z.92",
    "1.0.0-alpha+001",
    "1.0.0+20130313144700",
    "1.0.0-beta+exp.sha.5114f85",
    "1.0.0+21AF26D3----117B344092BD",
    "1.0.0-rc.1+build.1",
    "1.0.0--",
    "1.0.0-0a",
]
BAD_VERSIONS = [
    "",
    "1",
    "1.0",
    "1.0.0.0",
    "01.0.0",
    "1.02.0",
    "1.0.03",
    "v1.0.0",
    "1.0.0-",
    "1.0.0+",
    "1.0.0-01",
    "1.0.0-alpha..1",
    "1.0.0+a..b",
    "1.0.0-a_b",
    " 1.0.0",
    "1.0.0 ",
    "1.0.0\n",
    "\u0661.\u0660.\u0660",  # Arabic-Indic digits
    "latest",
    "1.0.0-\u03b1",  # Greek alpha
]


@pytest.mark.parametrize("value", GOOD_VERSIONS)
def test_semver_accepts(value: str) -> None:
    assert is_semver(value)


@pytest.mark.parametrize("value", BAD_VERSIONS)
def test_semver_refuses(value: str) -> None:
    assert not is_semver(value)


@pytest.mark.parametrize("value", [None, 1, 1.0, (1, 0, 0), b"1.0.0"])
def test_semver_refuses_non_strings(value: object) -> None:
    assert not is_semver(value)


# --- validate_plugin_path ---------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins" / "design"
    (folder / "src").mkdir(parents=True)
    (folder / "design_plugin.py").write_text("x = 1\n")
    (folder / "src" / "impl.py").write_text("x = 1\n")
    (tmp_path / "outside.py").write_text("x = 1\n")
    return folder


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("design_plugin.py", "design_plugin.py"),
        ("./design_plugin.py", "design_plugin.py"),
        ("src/impl.py", "src/impl.py"),
        ("src/../design_plugin.py", "design_plugin.py"),
        ("missing.py", "missing.py"),
    ],
)
def test_plugin_path_inside(plugin_dir: Path, relative: str, expected: str) -> None:
    assert validate_plugin_path(plugin_dir, relative) == (plugin_dir / expected).resolve()


@pytest.mark.parametrize(
    "relative",
    ["../outside.py", "../../outside.py", "src/../../outside.py", "nope/../../x.py", "..", ""],
)
def test_plugin_path_escaping_with_dots(plugin_dir: Path, relative: str) -> None:
    with pytest.raises(PathTraversalError):
        validate_plugin_path(plugin_dir, relative)


def test_plugin_path_absolute_is_refused_even_inside(plugin_dir: Path) -> None:
    with pytest.raises(PathTraversalError, match="absolute"):
        validate_plugin_path(plugin_dir, str(plugin_dir / "design_plugin.py"))


def test_plugin_path_nul_is_refused(plugin_dir: Path) -> None:
    with pytest.raises(PathTraversalError, match="NUL"):
        validate_plugin_path(plugin_dir, "design_plugin.py\x00.txt")


def test_plugin_path_symlinked_file_outside(plugin_dir: Path, tmp_path: Path) -> None:
    (plugin_dir / "link_plugin.py").symlink_to(tmp_path / "outside.py")
    with pytest.raises(PathTraversalError, match="outside"):
        validate_plugin_path(plugin_dir, "link_plugin.py")


def test_plugin_path_symlinked_dir_outside(plugin_dir: Path, tmp_path: Path) -> None:
    (plugin_dir / "lib").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(PathTraversalError):
        validate_plugin_path(plugin_dir, "lib/outside.py")


def test_plugin_path_symlink_inside_is_followed(plugin_dir: Path) -> None:
    (plugin_dir / "alias_plugin.py").symlink_to(plugin_dir / "src" / "impl.py")
    assert validate_plugin_path(plugin_dir, "alias_plugin.py") == plugin_dir / "src" / "impl.py"


def test_plugin_path_symlink_loop(plugin_dir: Path) -> None:
    (plugin_dir / "a.py").symlink_to(plugin_dir / "b.py")
    (plugin_dir / "b.py").symlink_to(plugin_dir / "a.py")
    with pytest.raises(PathTraversalError):
        validate_plugin_path(plugin_dir, "a.py")


def test_plugin_dir_given_through_symlink(plugin_dir: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(plugin_dir, target_is_directory=True)
    assert validate_plugin_path(alias, "design_plugin.py") == plugin_dir / "design_plugin.py"


# --- validate_path -----------------------------------------------------------------------


def test_validate_path_defaults_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("")
    assert validate_path("a.txt") == tmp_path.resolve() / "a.txt"
    with pytest.raises(PathTraversalError):
        validate_path("../a.txt")
    with pytest.raises(PathTraversalError):
        validate_path("/etc/passwd")


def test_validate_path_any_base(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    assert validate_path(second / "x", [first, second]) == second.resolve() / "x"
    assert validate_path("x", [first, second]) == first.resolve() / "x"
    with pytest.raises(PathTraversalError):
        validate_path(tmp_path / "x", [first, second])


@pytest.mark.parametrize("bad", ["a\x00b", "", "sub/../../escape"])
def test_validate_path_refuses(tmp_path: Path, bad: str) -> None:
    with pytest.raises(PathTraversalError):
        validate_path(bad, [tmp_path])


def test_validate_path_symlink_escape(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "link").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(PathTraversalError):
        validate_path("link/secret", [base])


def test_validate_path_empty_bases_allow_nothing(tmp_path: Path) -> None:
    with pytest.raises(PathTraversalError):
        validate_path(tmp_path, [])


def test_validate_path_rejects_bytes(tmp_path: Path) -> None:
    with pytest.raises(PathTraversalError):
        validate_path(os.fsencode(str(tmp_path)), [tmp_path])  # type: ignore[arg-type]
