"""Where a plugin's file sits in a package (pure: a table of folders that are packages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spec_kit_runtime.plugins.package import PackagePlace, package_place

ROOT = Path("/p/greeter-plugin")

# (file below ROOT, folders below ROOT holding __init__.py, expected top below ROOT and
# module parts, or None for a module on its own)
CASES: list[tuple[str, set[str], tuple[str, tuple[str, ...]] | None]] = [
    ("greeter_plugin.py", set(), None),  # a plain plugin folder
    ("src/greeter_plugin/plugin.py", {"src/greeter_plugin"},  # Spec-Kit's layout
     ("src/greeter_plugin", ("plugin",))),
    ("src/greeter_plugin/plugin.py", set(), None),  # no __init__.py: on its own
    ("src/pkg/sub/plugin.py", {"src/pkg", "src/pkg/sub"}, ("src/pkg", ("sub", "plugin"))),
    ("src/pkg/sub/plugin.py", {"src/pkg/sub"}, ("src/pkg/sub", ("plugin",))),
    ("src/pkg/sub/plugin.py", {"src", "src/pkg", "src/pkg/sub"},
     ("src", ("pkg", "sub", "plugin"))),
    ("src/pkg/__init__.py", {"src/pkg"}, ("src/pkg", ())),  # the package itself
    ("src/pkg/sub/__init__.py", {"src/pkg", "src/pkg/sub"}, ("src/pkg", ("sub",))),
    ("plugin.py", {"."}, (".", ("plugin",))),  # the plugin folder is the package
    ("pkg/plugin.py", {".", "pkg"}, (".", ("pkg", "plugin"))),  # never above the folder
    ("my-pkg/plugin.py", {"my-pkg"}, ("my-pkg", ("plugin",))),  # the top's name is unused
    ("a/my-pkg/plugin.py", {"a", "a/my-pkg"}, ("a/my-pkg", ("plugin",))),  # ends the climb
    ("a/class/plugin.py", {"a", "a/class"}, ("a/class", ("plugin",))),  # a keyword too
    ("pkg/my-plugin.py", {"pkg"}, None),  # a name no import can use: on its own
    ("pkg/class.py", {"pkg"}, None),
]


@pytest.mark.parametrize(("file", "packages", "expected"), CASES)
def test_package_place(file: str, packages: set[str],
                       expected: tuple[str, tuple[str, ...]] | None) -> None:
    folders = {(ROOT / name).resolve() if name != "." else ROOT for name in packages}
    place = package_place(ROOT / file, ROOT, lambda folder: folder in folders)
    if expected is None:
        assert place is None
    else:
        top, parts = expected
        assert place == PackagePlace(ROOT / top if top != "." else ROOT, parts)


def test_nothing_above_the_plugin_folder_is_asked_about() -> None:
    asked: list[Path] = []

    def is_package(folder: Path) -> bool:
        asked.append(folder)
        return True  # every folder, even the ones above the plugin's

    place = package_place(ROOT / "src" / "pkg" / "plugin.py", ROOT, is_package)
    assert place == PackagePlace(ROOT, ("src", "pkg", "plugin"))
    assert all(folder == ROOT or ROOT in folder.parents for folder in asked)


def test_a_file_outside_the_folder_is_on_its_own() -> None:
    assert package_place(Path("/elsewhere/pkg/plugin.py"), ROOT, lambda _: True) is None


def test_module_name() -> None:
    place = PackagePlace(ROOT / "src" / "pkg", ("sub", "plugin"))
    assert place.module_name("_spec_kit_plugin_greeter") == "_spec_kit_plugin_greeter.sub.plugin"
    assert PackagePlace(ROOT, ()).module_name("_top") == "_top"
