"""The in-worker sandbox: known escapes are refused, ordinary PluginBase plugins still run."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from spec_kit_contracts import PluginContractError, PluginStatus

from spec_kit_runtime.errors import LifecycleError, SandboxImportError, SandboxViolation
from spec_kit_runtime.sandbox.plugin_sandbox import PluginSandbox
from spec_kit_runtime.sandbox.source_check import validate_source

DESIGN_PLUGIN = """\
from typing import Any, Dict, Optional
from spec_kit_contracts import PluginBase, IPluginMetadata, PluginCapability
class Plugin(PluginBase):
    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="design", version="1.0.0", author="x", description="d", capabilities=[PluginCapability.GENERATOR])
    def get_config_schema(self) -> Dict[str, Any]:
        return {"type": "object", "properties": {}}
    def handle_message(self, message: Any) -> Optional[Dict[str, Any]]:
        return {"echo": message.payload}
    def register_services(self, registry) -> None:
        registry.register_command("design:generate", self.generate)
    def generate(self, arguments, options):
        return {"doc": "# " + " ".join(arguments)}
"""  # noqa: E501 (kept exactly as the brief gives it)


def write(tmp_path: Path, source: str, name: str = "plugin.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


class Registry:
    def __init__(self) -> None:
        self.commands: dict[str, Any] = {}

    def register_command(self, name: str, handler: Any) -> None:
        self.commands[name] = handler


# -- ordinary plugins run --------------------------------------------------------------


def test_design_plugin_loads_and_answers(tmp_path: Path) -> None:
    path = write(tmp_path, DESIGN_PLUGIN)
    plugin = PluginSandbox().load_plugin(SimpleNamespace(path=path, entry_point="Plugin"), {})
    assert plugin.status is PluginStatus.INITIALIZED
    assert plugin.metadata.name == "design"
    registry = Registry()
    plugin.register_services(registry)
    assert registry.commands["design:generate"](["High", "Level"], {}) == {"doc": "# High Level"}
    assert plugin.handle_message(SimpleNamespace(payload={"a": 1})) == {"echo": {"a": 1}}
    plugin.activate()
    assert plugin.health_check()["healthy"] is True


def test_readme_sandbox_example_runs_as_written(tmp_path: Path) -> None:
    plugin_info = SimpleNamespace(path=write(tmp_path, DESIGN_PLUGIN), entry_point="Plugin")
    config: dict[str, Any] = {"enabled": True}

    sandbox = PluginSandbox(
        allowed_imports=["json", "datetime", "pathlib"],
        restricted_builtins=["eval", "exec", "open"],
    )

    plugin = sandbox.load_plugin(plugin_info, config)

    assert plugin.status is PluginStatus.INITIALIZED


def test_dataclasses_enums_abc_and_stdlib_work(tmp_path: Path) -> None:
    path = write(tmp_path, """
        import json, logging, re
        from abc import ABC, abstractmethod
        from collections import abc as cabc, OrderedDict
        from dataclasses import dataclass, field
        from enum import Enum
        from pathlib import PurePosixPath
        log = logging.getLogger(__name__)

        class Colour(Enum):
            RED = "red"

        @dataclass
        class Doc:
            title: str
            tags: list = field(default_factory=list)
            def __post_init__(self):
                self.slug = re.sub(r"\\W+", "-", self.title.lower())

        class Base(ABC):
            @abstractmethod
            def run(self): ...

        class Tool(Base):
            def run(self):
                doc = Doc("Hello World", ["a"])
                return json.dumps({
                    "slug": doc.slug, "colour": Colour("red").name,
                    "ordered": isinstance(OrderedDict(), cabc.Mapping),
                    "suffix": PurePosixPath("a/b.md").suffix, "cls": type(self).__name__,
                    "money": "{:.2f} {}".format(3.14159, "eur"),
                })
    """)
    tool = PluginSandbox().load_class(path, "Tool")()
    assert tool.run() == (
        '{"slug": "hello-world", "colour": "RED", "ordered": true, '
        '"suffix": ".md", "cls": "Tool", "money": "3.14 eur"}'
    )


def test_violations_are_listed_with_line_numbers() -> None:
    with pytest.raises(SandboxViolation) as info:
        validate_source("import os\nx = 1\ny = eval('1')\n", "evil.py")
    error = info.value
    assert error.code == "sandbox" and isinstance(error, LifecycleError)
    assert error.violations == [
        "evil.py:1: import of blocked module 'os'",
        "evil.py:3: use of 'eval'",
    ]
    assert "evil.py:3" in str(error)
    assert error.to_data()["context"]["violations"] == error.violations


def test_missing_entry_point(tmp_path: Path) -> None:
    path = write(tmp_path, "x = 1\n")
    with pytest.raises(LifecycleError, match="entry point 'Plugin' not found"):
        PluginSandbox().load_class(path, "Plugin")
    with pytest.raises(LifecycleError, match="is a int, not a class"):
        PluginSandbox().load_class(path, "x")


def test_syntax_error_is_a_violation(tmp_path: Path) -> None:
    with pytest.raises(SandboxViolation, match="syntax error"):
        PluginSandbox().load_class(write(tmp_path, "def (:\n"), "Plugin")


def test_refused_import_is_both_importerror_and_violation(tmp_path: Path) -> None:
    path = write(tmp_path, """
        try:
            import email
            HAVE_EMAIL = True
        except ImportError:
            HAVE_EMAIL = False
        class Plugin:
            have_email = HAVE_EMAIL
    """)
    assert PluginSandbox().load_class(path, "Plugin").have_email is False
    with pytest.raises(SandboxViolation):
        PluginSandbox().importer("email")
    assert PluginSandbox(allowed_imports=["email"]).importer("email").__name__ == "email"


def test_allowed_imports_cannot_unblock(tmp_path: Path) -> None:
    with pytest.raises(SandboxImportError, match="blocked"):
        PluginSandbox(allowed_imports=["os", "logging.handlers"]).importer("os")
    with pytest.raises(SandboxImportError, match="blocked"):
        PluginSandbox(allowed_imports=["logging.handlers"]).importer("logging.handlers")


def test_restricted_builtins_are_removed(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Plugin:
            def shout(self):
                return print("hi")
    """)
    plugin = PluginSandbox(restricted_builtins=["print"]).load_class(path, "Plugin")()
    with pytest.raises(NameError, match="print"):
        plugin.shout()


# -- escapes ---------------------------------------------------------------------------

ESCAPES = {
    "import os": "import os",
    "import os.path as p": "import os.path as p",
    "subprocess alias": "import subprocess as sp",
    "importlib": "import importlib",
    "logging.handlers": "import logging.handlers",
    "relative import": "from . import sibling",
    "star import": "from logging import *",
    "operator.attrgetter": "import operator\nf = operator.attrgetter('__globals__')",
    "from operator import": "from operator import attrgetter, methodcaller",
    "object.__getattribute__": "x = object.__getattribute__(1, 'real')",
    "str.format field": 'x = "{0.__class__}".format(1)',
    "format index field": 'x = "{0[__globals__]}".format_map({})',
    "nested format field": 'x = "{0:{1.__class__}}".format(1, 2)',
    "format on a variable": 'fmt = "{0.real}"\nx = fmt.format(1)',
    "unbound str.format": 'x = str.format("{0.__class__}", 1)',
    "bound format reference": 'f = "{0.__class__}".format\nx = f(1)',
    "traceback frame": """
        try:
            1 / 0
        except Exception as e:
            frame = e.__traceback__.tb_frame
    """,
    "tb_frame without dunder": "def f(tb):\n    return tb.tb_frame.f_back.f_globals",
    "generator frame": "def g():\n    yield 1\nx = g().gi_frame.f_back",
    "from pathlib import os": "from pathlib import os",
    "from logging import sys": "from logging import sys",
    "logging.sys": "import logging\nlogging.sys",
    "pathlib.os on an object": "from pathlib import Path\nx = Path('.')._flavour.os",
    "@getattr decorator gadget": """
        g = getattr
        @g
        def target():
            pass
    """,
    "@__import__ decorator gadget": """
        @__import__
        @lambda _: "os"
        class _:
            pass
    """,
    "@format decorator gadget": """
        @"{0.__globals__}".format
        def f():
            pass
    """,
    "string.Formatter.get_field": (
        "import string\nx = string.Formatter().get_field('0.__globals__', [len], {})"
    ),
    "from string import Formatter": "from string import Formatter",
    "logging.Formatter brace style": (
        "import logging\nf = logging.Formatter('{name.__class__}', style='{')"
    ),
    "logging.currentframe": "import logging\nf = logging.currentframe()",
    "subclasses walk": "x = ().__class__.__base__.__subclasses__()",
    "match class pattern": """
        def f(x):
            match x:
                case object(__class__=c):
                    return c
    """,
    "metaclass": "class M(type):\n    pass\nclass X(metaclass=M):\n    pass",
    "__builtins__": "b = __builtins__",
    "eval": "eval('1')",
    "exec": "exec('x = 1')",
    "compile": "compile('1', 'f', 'eval')",
    "open": "open('/etc/passwd')",
    "globals": "g = globals()",
    "vars": "v = vars()",
    "setattr": "setattr(object, 'x', 1)",
    "breakpoint": "breakpoint()",
    "input": "input()",
    "dunder via private import": "from dataclasses import _create_fn",
    "ForwardRef evaluation": """
        import typing
        ref = typing.get_args(typing.List["().__class__.__base__.__subclasses__()"])[0]
        x = ref._evaluate({}, {}, frozenset())
    """,
    "string annotation evaluated by get_type_hints": """
        import typing
        def f(x: "().__class__.__base__"):
            pass
        hints = typing.get_type_hints(f)
    """,
    "string annotation evaluated by singledispatch": """
        from functools import singledispatch
        @singledispatch
        def f(x):
            pass
        @f.register
        def _(x: "List['().__class__.__base__']"):
            pass
    """,
    "match_args lookup through an ABC": """
        import abc
        F = abc.ABCMeta("F", (), {"__match_args__": ("__globals__",)})
        F.register(type(len))
        match len:
            case F(g):
                pass
    """,
    "private attribute of another object": "from pathlib import Path\nx = Path('.')._flavour",
    "dunder name in a string": 'x = hasattr(len, "__self__")',
}


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_is_refused_at_validation(tmp_path: Path, source: str) -> None:
    path = write(tmp_path, source + "\nclass Plugin:\n    pass\n")
    with pytest.raises((SandboxViolation, ImportError)):
        PluginSandbox().load_class(path, "Plugin")


# Escapes that pass the AST rules and are caught by the module views at run time.
RUNTIME_ESCAPES = {
    "enum re-exports builtins": "import enum\nx = enum.bltns",
    "uuid re-exports platform": "import uuid\nx = uuid.platform",
    "monkeypatching json": "import json\njson.dumps = len",
    "deleting from a module": "import json\ndel json.loads",
}


@pytest.mark.parametrize("source", RUNTIME_ESCAPES.values(), ids=RUNTIME_ESCAPES.keys())
def test_escape_is_refused_by_module_views(tmp_path: Path, source: str) -> None:
    path = write(tmp_path, source + "\nclass Plugin:\n    pass\n")
    with pytest.raises(AttributeError, match="sandbox"):
        PluginSandbox().load_class(path, "Plugin")


# The views hold even where the AST rules would not see the access (aliases, strings).
@pytest.mark.parametrize(("module", "attribute"), [
    ("random", "_os"),
    ("dataclasses", "_create_fn"),
    ("pathlib", "posixpath"),
    ("pathlib", "os"),
    ("logging", "sys"),
    ("typing", "sys"),
    ("typing", "get_type_hints"),
    ("string", "Formatter"),
    ("json", "__dict__"),
    ("json", "__builtins__"),
])
def test_module_views_hide_private_names_and_foreign_modules(module: str, attribute: str) -> None:
    view = PluginSandbox().importer(module)
    with pytest.raises(AttributeError, match="sandbox"):
        view.__getattribute__(attribute)


def test_importer_refuses_module_re_exports_even_without_validation() -> None:
    importer = PluginSandbox().importer
    with pytest.raises(ImportError, match="'os' is the module 'os'"):
        importer("pathlib", None, None, ("os",), 0)
    with pytest.raises(ImportError):
        importer("logging", None, None, ("_acquireLock",), 0)
    with pytest.raises(ImportError):
        importer("logging", None, None, ("*",), 0)
    assert not hasattr(importer("uuid"), "os")


def test_module_views_are_stable_and_read_only() -> None:
    importer = PluginSandbox().importer
    json_view = importer("json")
    assert json_view is importer("json")
    assert json_view.dumps([1]) == "[1]"
    assert json_view.__name__ == "json"
    assert "dumps" in dir(json_view) and "_default_encoder" not in dir(json_view)
    with pytest.raises(AttributeError):
        json_view.dumps = len


def test_own_private_attributes_and_builtin_match_patterns_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class Counter:
            def __init__(self):
                self._n = 0
            @classmethod
            def make(cls):
                return cls()
            def bump(self, value):
                match value:
                    case int(n):
                        self._n += n
                    case {"add": int(n)}:
                        self._n += n
                return self._n
        if __name__ == "__main__":
            pass
    """)
    counter = PluginSandbox().load_class(path, "Counter").make()
    assert counter.bump(2) == 2 and counter.bump({"add": 3}) == 5


def test_plugin_errors_surface_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, "raise ValueError('plugin bug')\n")
    with pytest.raises(ValueError, match="plugin bug"):
        PluginSandbox().load_class(path, "Plugin")


def test_sandbox_violation_is_a_1_0_plugin_contract_error() -> None:
    with pytest.raises(PluginContractError):
        validate_source("import sys\n", "p.py")
