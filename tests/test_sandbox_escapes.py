"""The red team's escapes from the Python sandbox, each a PoC that once worked.

Every file in tests/sandbox_escapes/ defines ``Plugin`` with a ``run()`` that returned the
real ``os``, ``sys``, builtins or a file's contents when the escape worked. Each must now be
refused when it is loaded, or fail in ``run()`` with the sandbox's refusal, never return.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from spec_kit_runtime.errors import SandboxViolation
from spec_kit_runtime.sandbox.plugin_sandbox import PluginSandbox

CORPUS = Path(__file__).parent / "sandbox_escapes"

# What stops each one: "load" (source rules or a hidden name at import) or "run".
STOPPED_AT = {
    "contextlib_chdir_os_side_effect": "run",  # contextlib.chdir is hidden
    "dataclass_codegen_injection": "load",  # a field name that is not an identifier
    "dataclass_forged_base_fields": "load",  # the same, inherited from a forged base
    "frame_via_exit_and_match": "load",  # 'int', 'float', 'bytes' rebound
    "io_fileio_via_lastresort": "run",  # logging.lastResort is hidden
    "logging_brace_formatter_via_instance": "load",  # logging.BufferingFormatter is hidden
    "match_format_nonliteral": "load",  # case str(format=f)
    "match_kwd_private_attr": "load",  # case object(_flavour=...)
    "match_selfmatching_name_rebound": "load",  # 'int' rebound to an ABC
    "singledispatch_runtime_annotation_eval": "load",  # functools.singledispatch is hidden
    "subclasses_via_update_wrapper": "run",  # update_wrapper with its own names
    "update_wrapper_globals": "run",
    "warnings_formatwarning_reads_files": "run",  # warnings.formatwarning is hidden
}
REFUSALS = (SandboxViolation, ImportError, AttributeError)


def test_every_poc_in_the_corpus_has_an_expectation() -> None:
    assert {path.stem for path in CORPUS.glob("*.py")} == set(STOPPED_AT)


@pytest.mark.parametrize("name", sorted(STOPPED_AT))
def test_the_escape_is_stopped(name: str) -> None:
    sandbox = PluginSandbox()
    if STOPPED_AT[name] == "load":
        with pytest.raises(REFUSALS):
            sandbox.load_class(CORPUS / f"{name}.py", "Plugin")
        return
    plugin = sandbox.load_class(CORPUS / f"{name}.py", "Plugin")()
    with pytest.raises(REFUSALS, match="sandbox"):
        plugin.run()


def write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "plugin.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_wraps_and_dataclasses_still_work_as_plugins_use_them(tmp_path: Path) -> None:
    path = write(tmp_path, """
        import functools
        from dataclasses import dataclass, field
        from functools import wraps

        def logged(function):
            @wraps(function)
            def wrapper(*args):
                return ("logged", function(*args))
            return wrapper

        @dataclass(frozen=True)
        class Point:
            x: int
            y: int = 0
            tags: list = field(default_factory=list)

        class Plugin:
            @logged
            def area(self, point):
                "The doc."
                return point.x * point.y

            def run(self):
                cached = functools.lru_cache(maxsize=4)(lambda n: n * 2)
                return (self.area(Point(3, 4)), self.area.__name__, self.area.__doc__,
                        repr(Point(1)), cached(21))
    """)
    plugin = PluginSandbox().load_class(path, "Plugin")()
    assert plugin.run() == (("logged", 12), "area", "The doc.",
                            "Point(x=1, y=0, tags=[])", 42)


@pytest.mark.parametrize("source", [
    "int = 3", "def str(): pass", "class bytes: pass", "import json as dict",
    "for float in []: pass", "def f(list): pass", "try:\n    pass\nexcept Exception as set:\n"
    "    pass", "match 1:\n    case tuple:\n        pass", "[frozenset := 1]",
])
def test_the_self_matching_builtin_names_cannot_be_rebound(tmp_path: Path, source: str) -> None:
    with pytest.raises(SandboxViolation, match="binding the builtin name"):
        PluginSandbox().load_class(write(tmp_path, source + "\nclass Plugin:\n    pass\n"),
                                   "Plugin")
