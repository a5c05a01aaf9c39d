"""A plugin file in a package is imported as Python imports it, by the trusted loader and
by the sandbox: ``__init__`` first, each module once, relative imports within the package
only. In this process (the live tests run the same code in workers); each test's modules
are removed from ``sys.modules`` after it."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spec_kit_runtime.errors import LifecycleError, SandboxImportError, SandboxViolation
from spec_kit_runtime.sandbox.plugin_sandbox import PluginSandbox
from spec_kit_worker.loop.loader import load_plugin_class

# Each module says it ran in RUNS (kept in helpers.py), so a module run twice shows.
PACKAGE = {
    "helpers.py": "RUNS = []\n\ndef greeting(name):\n    return 'Hello, ' + name + '!'\n",
    "__init__.py": """
        from . import helpers
        helpers.RUNS.append('init')
        from .plugin import Plugin
    """,
    "plugin.py": """
        from . import helpers
        from .helpers import greeting
        helpers.RUNS.append('plugin')

        class Plugin:
            runs = helpers.RUNS

            def hello(self, name):
                return greeting(name)

            def late(self):
                from .later import LATE
                return LATE
    """,
    "later.py": "LATE = 'imported when called'\n",
}


def write_package(root: Path, files: dict[str, str], package: str = "src/pkg") -> Path:
    """The files in ``root/package``; returns the plugin file ``plugin.py``'s path."""
    for name, text in files.items():
        path = root / package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / package / "plugin.py"


def trusted(plugin_id: str, file: Path, root: Path) -> type:
    return load_plugin_class(plugin_id, file, "Plugin", False, root)


def sandboxed(plugin_id: str, file: Path, root: Path) -> type:
    return PluginSandbox().load_class(file, "Plugin", root)


Loader = Callable[[str, Path, Path], type]
LOADERS = [pytest.param(trusted, id="trusted"), pytest.param(sandboxed, id="sandboxed")]


@pytest.fixture(autouse=True)
def forget_plugin_modules() -> Iterator[None]:
    before, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("_spec_kit_", "spec_kit_plugin_")):
            del sys.modules[name]
    sys.path[:] = path


@pytest.mark.parametrize("load", LOADERS)
def test_init_runs_first_and_each_module_once(tmp_path: Path, load: Loader) -> None:
    cls = load("pkg-once", write_package(tmp_path, PACKAGE), tmp_path)
    assert cls.runs == ["init", "plugin"]
    plugin = cls()
    assert plugin.hello("X") == "Hello, X!"
    assert plugin.late() == "imported when called"  # a relative import at call time


def test_trusted_package_has_a_private_name(tmp_path: Path) -> None:
    """Named ``json``, the plugin's package is still not taken for the standard library's
    (nor the other way round), and nothing of it lands on ``sys.path``."""
    files = {**PACKAGE, "__init__.py": "import json\nDUMPS = json.dumps\n"
                                       "from .plugin import Plugin\n"}
    path_before = list(sys.path)
    cls = trusted("my-plugin", write_package(tmp_path, files, "json"), tmp_path)
    assert cls.__module__ == "_spec_kit_plugin_my_plugin.plugin"
    package = sys.modules["_spec_kit_plugin_my_plugin"]
    assert package.DUMPS({"a": 1}) == '{"a": 1}'
    assert sys.modules["json"].__file__ != str(tmp_path / "json" / "__init__.py")
    assert sys.path == path_before


def test_trusted_file_on_its_own_still_reaches_its_siblings(tmp_path: Path) -> None:
    (tmp_path / "sibling.py").write_text("VALUE = 7\n")
    (tmp_path / "alone_plugin.py").write_text("import sibling\n\nclass Plugin:\n"
                                              "    value = sibling.VALUE\n")
    cls = trusted("alone", tmp_path / "alone_plugin.py", tmp_path)
    assert (cls.__module__, cls.value) == ("spec_kit_plugin_alone", 7)
    sys.modules.pop("sibling", None)


def test_trusted_file_shadowed_by_a_package_of_its_name(tmp_path: Path) -> None:
    file = write_package(tmp_path, {"__init__.py": "", "plugin.py": "class Plugin: pass\n",
                                    "plugin/__init__.py": "class Plugin: pass\n"})
    with pytest.raises(LifecycleError, match="a package of the same name beside it"):
        trusted("shadowed", file, tmp_path)


@pytest.mark.parametrize("load", LOADERS)
def test_relative_import_beyond_the_top_package(tmp_path: Path, load: Loader) -> None:
    files = {"__init__.py": "", "plugin.py": "from .. import outside\n"}
    file = write_package(tmp_path, files, "pkg")
    (tmp_path / "outside.py").write_text("X = 1\n")
    with pytest.raises(ImportError, match="beyond"):
        load("beyond", file, tmp_path)


@pytest.mark.parametrize("load", LOADERS)
def test_missing_module_is_an_import_error_plugin_code_can_catch(tmp_path: Path,
                                                                  load: Loader) -> None:
    files = {"__init__.py": "", "plugin.py": """
        try:
            from . import optional
        except ImportError:
            optional = None

        class Plugin:
            found = optional
    """}
    cls = load("optional", write_package(tmp_path, files), tmp_path)
    assert cls.found is None


def test_sandbox_checks_every_module_of_the_package(tmp_path: Path) -> None:
    files = {**PACKAGE, "later.py": "import subprocess\nLATE = 1\n"}
    plugin = sandboxed("checked", write_package(tmp_path, files), tmp_path)()
    with pytest.raises(SandboxViolation, match=r"later\.py:1: import of blocked module"):
        plugin.late()


def test_sandbox_refuses_a_link_out_of_the_package(tmp_path: Path) -> None:
    file = write_package(tmp_path, {"__init__.py": "", "plugin.py": "from . import linked\n"})
    (tmp_path / "elsewhere.py").write_text("X = 1\n")
    (file.parent / "linked.py").symlink_to(tmp_path / "elsewhere.py")
    with pytest.raises(SandboxImportError, match="leads outside the plugin's package"):
        sandboxed("linked", file, tmp_path)


def test_sandbox_refuses_a_top_init_linked_out_of_the_package(tmp_path: Path) -> None:
    file = write_package(tmp_path, {"plugin.py": "class Plugin:\n    pass\n"})
    (tmp_path / "evil.py").write_text("OUTSIDE = True\n")
    (file.parent / "__init__.py").symlink_to(tmp_path / "evil.py")
    with pytest.raises(SandboxImportError, match="leads outside the plugin's package"):
        sandboxed("linked_init", file, tmp_path)


@pytest.mark.parametrize("rename", [
    "helpers.__name__ = 'importlib'",
    # no '__name__' in the source: update_wrapper copies it from a function of that name
    "import functools\ndef importlib():\n    pass\nfunctools.update_wrapper(helpers, importlib)",
])
def test_sandbox_renamed_own_module_hands_out_nothing_real(tmp_path: Path, rename: str) -> None:
    """The red team's escape: a plugin renamed its own module 'importlib', then 'from
    .helpers import util' fell back to sys.modules['importlib.util'], the real one, and
    from there to the real subprocess and builtins. A name the module lacks now fails."""
    plugin_source = f"from . import helpers\n{rename}\nfrom .helpers import util\n"
    file = write_package(tmp_path, {"__init__.py": "", "helpers.py": "X = 1\n",
                                    "plugin.py": plugin_source})
    with pytest.raises(ImportError, match="cannot import name 'util'"):
        sandboxed("renamer", file, tmp_path)


def test_sandbox_absolute_from_import_of_a_missing_name_fails_here(tmp_path: Path) -> None:
    file = write_package(tmp_path, {"__init__.py": "",
                                    "plugin.py": "from json import no_such_name\n"})
    with pytest.raises(ImportError, match="cannot import name 'no_such_name' from 'json'"):
        sandboxed("missing", file, tmp_path)


def test_sandbox_leaves_nothing_behind_after_a_failed_load(tmp_path: Path) -> None:
    files = {**PACKAGE, "helpers.py": "RUNS = []\nraise ValueError('broken helper')\n"}
    before = set(sys.modules)
    sandbox = PluginSandbox()
    with pytest.raises(ValueError, match="broken helper"):
        sandbox.load_class(write_package(tmp_path, files), "Plugin", tmp_path)
    assert set(sys.modules) == before
    assert sandbox.importer.packages == {}


def test_sandbox_keeps_two_plugins_packages_apart(tmp_path: Path) -> None:
    sandbox = PluginSandbox()
    first = write_package(tmp_path / "one", PACKAGE)
    second = write_package(tmp_path / "two", {
        **PACKAGE, "helpers.py": "RUNS = []\n\ndef greeting(name):\n    return 'Hi ' + name\n"})
    one = sandbox.load_class(first, "Plugin", tmp_path / "one")()
    two = sandbox.load_class(second, "Plugin", tmp_path / "two")()
    assert (one.hello("a"), two.hello("b")) == ("Hello, a!", "Hi b")
    assert one.late() == two.late() == "imported when called"


def test_sandboxed_file_on_its_own_says_why_relative_imports_fail(tmp_path: Path) -> None:
    (tmp_path / "alone_plugin.py").write_text("from . import sibling\n")
    with pytest.raises(SandboxViolation, match=r"its folder has no __init__\.py"):
        PluginSandbox().load_class(tmp_path / "alone_plugin.py", "Plugin", tmp_path)


def test_sandbox_refuses_star_and_private_relative_imports(tmp_path: Path) -> None:
    for line, words in (("from . import *", "star import"),
                        ("from .helpers import _hidden", "private name")):
        file = write_package(tmp_path / words.replace(" ", "_"),
                             {"__init__.py": "", "helpers.py": "", "plugin.py": line + "\n"})
        with pytest.raises(SandboxViolation, match=words):
            sandboxed("refused", file, file.parent.parent.parent)


def test_sandbox_own_modules_may_share_a_blocked_module_name_but_not_be_imported_by_it(
        tmp_path: Path) -> None:
    """``from .inspect import x`` is the plugin's own ``inspect.py``, not the blocked module;
    a name that is a blocked module's (``from . import os``) is still refused, as anywhere."""
    files = {"__init__.py": "", "inspect.py": "X = 1\n", "os.py": "",
             "plugin.py": "from .inspect import X\n\nclass Plugin:\n    x = X\n"}
    assert sandboxed("own", write_package(tmp_path / "a", files), tmp_path / "a").x == 1
    files["plugin.py"] = "from . import os\n"
    with pytest.raises(SandboxViolation, match=r"import of blocked module 'os' from '\.'"):
        sandboxed("own", write_package(tmp_path / "b", files), tmp_path / "b")
