"""The in-worker Python sandbox for plugins marked ``"sandbox": true`` (defence in depth).

**This is not a security boundary.** CPython cannot confine code running in its own
interpreter; new escapes are found regularly. The boundary in 2.0 is the worker process
and the operating system around it (no_new_privs, Landlock, network namespace). This
layer only raises the cost of the well-known tricks and turns them into clear load-time
errors:

* source validation by AST (``validate_source``): blocked imports, dangerous builtins by
  name, dunder attributes (bar a small allowlist), frame/traceback attributes, attribute
  names of blocked modules (``logging.sys``), ``str.format`` fields that reach attributes,
  known gadget names (``attrgetter``, ``Formatter``, ...), metaclasses, ``match`` class
  patterns naming forbidden attributes;
* a restricted ``__import__`` that hands out read-only *views* of allowed modules: no
  private names, no module-valued attributes unless that module is allowed (closes
  ``from pathlib import os`` and ``enum.bltns``), no monkeypatching of shared modules;
* restricted builtins (no ``eval``/``exec``/``open``/``getattr``/...);
* the builtin names that ``match`` class patterns trust (``int``, ``str``, ...) may not be
  rebound, and a few standard-library callables that reach attributes by a name built at
  run time, or compile code, are replaced or hidden in the views (``sandbox_replacements``).
  The red team's PoCs of those escapes live in tests/sandbox_escapes/.

Not confined here: file access through ``pathlib`` or ``logging`` handlers (the worker's
Landlock ruleset and ``IFileSystemService`` own that), CPU and memory (worker limits).
"""

from __future__ import annotations

import ast
import builtins
import functools
import itertools
import logging
import string
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from spec_kit_runtime.errors import LifecycleError, SandboxImportError, SandboxViolation
from spec_kit_runtime.plugins.package import INIT, package_place

from .replacements import exposed

if TYPE_CHECKING:
    from .packages import SandboxedPackage

logger = logging.getLogger(__name__)

BLOCKED_MODULES: frozenset[str] = frozenset({
    # system, processes, signals
    "os", "sys", "subprocess", "shutil", "platform", "signal", "multiprocessing",
    "threading", "_thread", "concurrent", "atexit", "sysconfig", "site", "runpy",
    # network
    "socket", "ssl", "http", "urllib", "ftplib", "smtplib", "poplib", "imaplib",
    "telnetlib", "socketserver", "select", "selectors", "asyncio", "aiohttp", "requests",
    "httpx",
    # code execution and introspection
    "code", "codeop", "compile", "imp", "_imp", "importlib", "zipimport", "pkgutil",
    "inspect", "traceback", "gc", "dis", "pdb", "bdb", "types", "operator", "_operator",
    "faulthandler", "tracemalloc", "builtins", "__builtins__",
    # files and raw memory
    "io", "_io", "tempfile", "fileinput", "linecache", "fnmatch", "glob", "shlex",
    "codecs", "mmap", "posixpath", "ntpath", "ctypes", "cffi", "_ctypes",
    # serialization that runs code
    "pickle", "_pickle", "shelve", "marshal", "dill", "copyreg",
    # OS specifics
    "pty", "tty", "termios", "resource", "posix", "nt", "msvcrt", "winreg", "crypt",
    "spwd", "grp", "pwd", "syslog",
    # submodules of allowed packages that open sockets, files or eval config
    "logging.config", "logging.handlers",
})

ALLOWED_MODULES: frozenset[str] = frozenset({
    "spec_kit_contracts", "typing", "dataclasses", "json", "re", "datetime", "enum", "abc",
    "collections", "functools", "itertools", "textwrap", "string", "math", "uuid",
    "hashlib", "pathlib", "logging", "difflib", "decimal", "fractions", "random",
    "statistics", "copy", "pprint", "reprlib", "contextlib", "warnings", "weakref",
    "numbers", "bisect", "heapq", "array", "struct", "unicodedata", "base64", "binascii",
    "html", "hmac",
})

# Builtins removed from the plugin's namespace (1.0's list, less the harmless ``hasattr``).
FORBIDDEN_BUILTINS: frozenset[str] = frozenset({
    "eval", "exec", "compile", "__import__", "open", "input", "breakpoint", "memoryview",
    "vars", "locals", "globals", "getattr", "setattr", "delattr", "dir", "help",
    "credits", "license", "copyright", "exit", "quit",
})

# Names refused wherever they appear in source: each reaches attributes or code by name.
_FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "__import__", "open", "input", "breakpoint", "vars",
    "locals", "globals", "getattr", "setattr", "delattr", "dir",
})

_ALLOWED_DUNDER_ATTRIBUTES = frozenset({
    "__init__", "__post_init__", "__name__", "__doc__", "__enter__", "__exit__",
})
_ALLOWED_DUNDER_NAMES = frozenset({
    "__name__", "__doc__", "__file__", "__all__", "__slots__", "__module__",
    "__qualname__", "__class__", "__version__", "__author__",
})

_FRAME_ATTRIBUTES = frozenset({
    "tb_frame", "tb_next", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
    "f_trace", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await",
    "ag_frame", "ag_code", "ag_await", "func_globals", "func_code", "func_closure",
    "co_consts", "co_code",
})

# Public callables of allowed modules that look attributes up from strings or reach frames.
_GADGETS = frozenset({
    "attrgetter", "methodcaller", "Formatter", "vformat", "get_field", "StrFormatStyle",
    "PercentStyle", "StringTemplateStyle", "currentframe", "_getframe", "get_type_hints",
    "ForwardRef",
})

# Receivers whose private (``_x``) attributes plugin code may touch: its own objects.
_OWN_RECEIVERS = frozenset({"self", "cls"})

# Classes whose positional ``match`` patterns match the subject itself (no attribute
# lookup); any other class looks attributes up by the names in its ``__match_args__``.
_SELF_MATCHING = frozenset({
    "bool", "bytearray", "bytes", "dict", "float", "frozenset", "int", "list", "set",
    "str", "tuple",
})

# Blocked module names that are also everyday attribute names (``err.code``); the module
# views catch these on modules, so the AST rule leaves them alone on other objects.
_ORDINARY_WORDS = frozenset({
    "code", "compile", "resource", "signal", "platform", "types", "requests", "http",
    "glob", "inspect", "traceback", "select",
})
_BLOCKED_ATTRIBUTES = frozenset(
    name for name in BLOCKED_MODULES if "." not in name and name not in _ORDINARY_WORDS
)

_FORMAT_METHODS = frozenset({"format", "format_map"})
_MAX_SOURCE_BYTES = 4 * 1024 * 1024
_module_numbers = itertools.count(1)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _prefixes(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    return (".".join(parts[: i + 1]) for i in range(len(parts)))


def is_blocked_module(name: str) -> bool:
    """True when ``name`` or a package it lives in is blocked."""
    return any(prefix in BLOCKED_MODULES for prefix in _prefixes(name))


# -- source validation -----------------------------------------------------------------


class _Validator(ast.NodeVisitor):
    """Collects ``(line, what)`` for every forbidden construct in a module.

    ``relative_imports``: the module is in the plugin's package (``sandbox_packages``), so
    ``from . import x`` names the plugin's own modules; the imported names are still checked.
    """

    def __init__(self, relative_imports: bool = False) -> None:
        self.found: list[tuple[int, str]] = []
        self.relative_imports = relative_imports

    def _flag(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if is_blocked_module(alias.name):
                self._flag(node, f"import of blocked module '{alias.name}'")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")  # ".helpers": the plugin's own
        if node.level and not self.relative_imports:
            self._flag(node, "relative import (the plugin's file is not in a package: its "
                             "folder has no __init__.py)")
        elif not node.level and is_blocked_module(module):
            self._flag(node, f"import from blocked module '{module}'")
        for alias in node.names:
            self._check_imported_name(node, module, alias.name)
        self.generic_visit(node)

    def _check_imported_name(self, node: ast.AST, module: str, name: str) -> None:
        if name == "*":
            self._flag(node, f"star import from '{module}'")
        elif name.startswith("_"):
            self._flag(node, f"import of private name '{name}' from '{module}'")
        elif name in BLOCKED_MODULES or is_blocked_module(f"{module}.{name}"):
            self._flag(node, f"import of blocked module '{name}' from '{module}'")
        elif name in _GADGETS:
            self._flag(node, f"import of '{name}' from '{module}'")

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        dunder = _is_dunder(name) and name not in _ALLOWED_DUNDER_NAMES
        if dunder or name in _FORBIDDEN_NAMES or name in _GADGETS:
            self._flag(node, f"use of '{name}'")
        if not isinstance(node.ctx, ast.Load):
            self._check_binding(node, name)

    def _check_binding(self, node: ast.AST, name: str | None) -> None:
        """Class patterns trust ``int``, ``str``, ... to be the builtins (they match the
        subject itself): rebound to a class with ``__match_args__``, ``case int(x)`` would
        read any attribute. So those names may not be bound, by any statement."""
        if name in _SELF_MATCHING:
            self._flag(node, f"binding the builtin name '{name}'")

    def visit_alias(self, node: ast.alias) -> None:
        self._check_binding(node, node.asname or node.name.partition(".")[0])

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._check_binding(node, node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._check_binding(node, node.rest)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        problem = _attribute_problem(node.attr)
        if not problem and _is_private(node.attr) and not _is_own(node.value):
            problem = f"access to private attribute '{node.attr}' of another object"
        if problem:
            self._flag(node, problem)
        elif node.attr in _FORMAT_METHODS:
            self._check_format(node)
        self.generic_visit(node)

    def _check_format(self, node: ast.Attribute) -> None:
        receiver = node.value
        if not (isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)):
            self._flag(node, f"'.{node.attr}' on a non-literal string")
        elif _format_reaches_attributes(receiver.value):
            self._flag(node, f"format field with '.' or '[' in {receiver.value[:40]!r}")

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        if node.patterns and not (
            isinstance(node.cls, ast.Name) and node.cls.id in _SELF_MATCHING
        ):
            self._flag(node, "positional class pattern (looks attributes up by name)")
        for attr in node.kwd_attrs:  # each one is an attribute read of the subject
            problem = _attribute_problem(attr)
            if not problem and _is_private(attr):
                problem = f"access to private attribute '{attr}' of another object"
            if not problem and attr in _FORMAT_METHODS:
                problem = f"'.{attr}' of a string that is not a literal"
            if problem:
                self._flag(node, f"match pattern: {problem}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and _is_dunder(value) and value.isidentifier() and (
            value not in _ALLOWED_DUNDER_ATTRIBUTES | _ALLOWED_DUNDER_NAMES | {"__main__"}
        ):
            self._flag(node, f"string naming '{value}'")

    def visit_arg(self, node: ast.arg) -> None:
        self._check_binding(node, node.arg)
        self._check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._check_binding(node, node.name)
        self._check_annotation(node.returns)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def _check_annotation(self, annotation: ast.expr | None) -> None:
        """String annotations are code too: ``get_type_hints`` (and singledispatch) eval them."""
        for node in ast.walk(annotation) if annotation is not None else ():
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            try:
                parsed = ast.parse(node.value.strip(), mode="eval")
            except SyntaxError:
                continue
            inner = _Validator()
            inner.visit(parsed)
            inner._check_annotation(parsed.body)
            for _line, what in inner.found:
                self._flag(node, f"in string annotation: {what}")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_binding(node, node.name)
        if any(keyword.arg == "metaclass" for keyword in node.keywords):
            self._flag(node, "use of a metaclass")
        self.generic_visit(node)


def _attribute_problem(attr: str) -> str | None:
    if _is_dunder(attr) and attr not in _ALLOWED_DUNDER_ATTRIBUTES:
        return f"access to '{attr}'"
    if attr in _FRAME_ATTRIBUTES:
        return f"access to frame/traceback attribute '{attr}'"
    if attr in _BLOCKED_ATTRIBUTES:
        return f"access to attribute '{attr}' (a blocked module's name)"
    if attr in _GADGETS:
        return f"access to '{attr}'"
    return None


def _is_private(attr: str) -> bool:
    return attr.startswith("_") and not _is_dunder(attr)


def _is_own(receiver: ast.expr) -> bool:
    """True for ``self``, ``cls`` and ``super()``: the plugin's own objects."""
    if isinstance(receiver, ast.Name):
        return receiver.id in _OWN_RECEIVERS
    return (
        isinstance(receiver, ast.Call)
        and isinstance(receiver.func, ast.Name)
        and receiver.func.id == "super"
    )


def _format_reaches_attributes(template: str) -> bool:
    """True when a format string has a field like ``{0.attr}`` or ``{0[key]}``."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return True  # malformed: refuse rather than guess what format() would do
    for _literal, field, spec, _conversion in fields:
        if field is not None and ("." in field or "[" in field):
            return True
        if spec and "{" in spec and _format_reaches_attributes(spec):
            return True
    return False


def validate_source(source: str, filename: str, *, relative_imports: bool = False) -> None:
    """Raise SandboxViolation listing every forbidden construct in ``source`` with its line
    (``relative_imports``: allowed, for a module of the plugin's own package)."""
    try:
        tree = ast.parse(source, filename=filename)
        validator = _Validator(relative_imports)
        validator.visit(tree)
    except SyntaxError as exc:
        _refuse(filename, [(exc.lineno or 0, f"syntax error: {exc.msg}")])
    except (RecursionError, MemoryError, ValueError) as exc:
        _refuse(filename, [(0, f"source cannot be checked: {type(exc).__name__}")])
    if validator.found:
        _refuse(filename, validator.found)


def _refuse(filename: str, found: Iterable[tuple[int, str]]) -> NoReturn:
    lines = [f"{filename}:{line}: {what}" for line, what in sorted(found)]
    raise SandboxViolation(
        "plugin source breaks the sandbox rules:\n  " + "\n  ".join(lines),
        file=filename, violations=lines,
    )


# -- imports ---------------------------------------------------------------------------


class RestrictedImporter:
    """The plugin's ``__import__``: allowed modules only, each seen through a read-only view."""

    def __init__(self, extra_allowed: Iterable[str] = ()) -> None:
        self.allowed = ALLOWED_MODULES | {m for m in extra_allowed if not is_blocked_module(m)}
        self._views: dict[str, types.ModuleType] = {}
        self.packages: dict[str, SandboxedPackage] = {}  # plugins' packages by private name

    def is_allowed(self, name: str) -> bool:
        """True when ``name`` may be imported (and is not blocked)."""
        prefixes = list(_prefixes(name))
        return not is_blocked_module(name) and any(p in self.allowed for p in prefixes)

    def __call__(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        if level:
            caller = (globals or {}).get("__name__")
            package = self.packages.get(str(caller).partition(".")[0])
            if package is None:
                raise SandboxImportError("relative imports work only in a plugin whose file "
                                         "is in a package (a folder with __init__.py)")
            return package.import_relative(name, globals, fromlist, level)
        if not self.is_allowed(name):
            logger.warning("sandbox refused import of %r", name)
            why = "blocked" if is_blocked_module(name) else "not allowed"
            raise SandboxImportError(f"import of '{name}' is {why} in the sandbox", module=name)
        names = tuple(fromlist or ())
        module = builtins.__import__(name, None, None, names, 0)
        for item in names:
            self._check_from(module, item)
        return self.view(module)

    def _check_from(self, module: types.ModuleType, item: str) -> None:
        if item == "*" or item.startswith("_"):
            raise SandboxImportError(f"'from {module.__name__} import {item}' is not allowed")
        try:
            value = exposed(module, item)
        except AttributeError as exc:
            if hasattr(module, item):  # hidden: say so
                raise SandboxImportError(f"'from {module.__name__} import {item}': "
                                         f"{exc}") from None
            # Missing: fail here, never through Python's sys.modules fallback.
            raise ImportError(f"cannot import name {item!r} from {module.__name__!r}"
                              ) from None
        if isinstance(value, types.ModuleType) and not self.is_allowed(value.__name__):
            raise SandboxImportError(
                f"'from {module.__name__} import {item}': '{item}' is the module "
                f"'{value.__name__}', which is not allowed in the sandbox"
            )

    def view(self, module: types.ModuleType) -> types.ModuleType:
        """The read-only public face of ``module`` handed to plugin code (one per module)."""
        found = self._views.get(module.__name__)
        if found is None:
            found = self._views[module.__name__] = _make_view(module, self._public_attribute)
        return found

    def _public_attribute(self, module: types.ModuleType, name: str) -> Any:
        if name in ("__name__", "__doc__"):
            return getattr(module, name)
        if name.startswith("_") or name in _GADGETS:
            raise AttributeError(f"'{module.__name__}.{name}' is not available in the sandbox")
        value = exposed(module, name)
        if isinstance(value, types.ModuleType):
            if not self.is_allowed(value.__name__):
                raise AttributeError(
                    f"'{module.__name__}.{name}' is the module '{value.__name__}', "
                    "which is not allowed in the sandbox"
                )
            return self.view(value)
        return value


def _make_view(
    module: types.ModuleType, lookup: Callable[[types.ModuleType, str], Any]
) -> types.ModuleType:
    """A module object whose every attribute read goes through ``lookup``; writes refused.

    The real module lives only in this closure, not in an attribute a plugin could read.
    """

    class ModuleView(types.ModuleType):
        def __getattribute__(self, name: str) -> Any:
            return lookup(module, name)

        def __setattr__(self, name: str, value: Any) -> None:
            raise AttributeError(f"sandboxed code may not modify module '{module.__name__}'")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"sandboxed code may not modify module '{module.__name__}'")

        def __dir__(self) -> list[str]:
            return [n for n in dir(module) if not n.startswith("_")]

        def __repr__(self) -> str:
            return f"<sandboxed module {module.__name__!r}>"

    return ModuleView(module.__name__, module.__doc__)


# -- loading ---------------------------------------------------------------------------


class PluginSandbox:
    """Loads plugin source with validated code, restricted imports and restricted builtins."""

    def __init__(
        self,
        allowed_imports: list[str] | None = None,
        restricted_builtins: list[str] | None = None,
    ) -> None:
        self.importer = RestrictedImporter(allowed_imports or ())
        self.forbidden_builtins = FORBIDDEN_BUILTINS | set(restricted_builtins or ())

    def builtins_namespace(self) -> dict[str, Any]:
        """The ``__builtins__`` a plugin module sees."""
        namespace = {
            name: value
            for name, value in vars(builtins).items()
            if name not in self.forbidden_builtins
        }
        namespace["__import__"] = self.importer
        return namespace

    def load_class(self, path: Path, entry_point: str, root: Path | None = None) -> type:
        """Validate and run the plugin file at ``path``; return its class ``entry_point``.

        ``root`` is the plugin's folder (default: the file's own). A file in a package
        inside it (``plugin_package``) is run as a module of that package, whose
        ``__init__`` runs first and whose modules its relative imports reach, each
        checked and run as the file is (``sandbox_packages``). Modules are registered in
        ``sys.modules`` under private names so that dataclasses and
        ``typing.get_type_hints`` in plugin code can find them.
        """
        from .packages import SandboxedPackage  # it builds on this module

        place = package_place(path.resolve(), (root or path.parent).resolve(),
                              lambda folder: (folder / INIT).is_file())
        if place is None:
            source = _read_source(path)
            validate_source(source, str(path))
            stem = "".join(c if c.isalnum() else "_" for c in path.stem)
            module = self.new_module(f"_spec_kit_sandboxed_{next(_module_numbers)}_{stem}", path)
            sys.modules[module.__name__] = module
            try:
                exec(compile(source, str(path), "exec"), module.__dict__)
            except BaseException:
                sys.modules.pop(module.__name__, None)
                raise
            discard: Callable[[], object] = functools.partial(
                sys.modules.pop, module.__name__, None)
        else:
            package = SandboxedPackage(self, place, f"_spec_kit_sandboxed_{next(_module_numbers)}")
            self.importer.packages[package.top_name] = package
            try:
                module = package.load()
            except BaseException:
                del self.importer.packages[package.top_name]
                raise
            discard = package.discard
        found = module.__dict__.get(entry_point)
        if not isinstance(found, type):
            discard()
            what = "not found" if found is None else f"is a {type(found).__name__}, not a class"
            raise LifecycleError(
                f"{path}: entry point '{entry_point}' {what}", file=str(path), phase="load"
            )
        return found

    def new_module(self, name: str, path: Path) -> types.ModuleType:
        """An empty module ``name`` for the source at ``path``, with the sandbox's builtins."""
        module = types.ModuleType(name)
        module.__dict__.update(
            __builtins__=self.builtins_namespace(),
            __file__=str(path),
            Path=Path,  # 1.0 pre-imported these two
            logging=self.importer.view(logging),
        )
        return module

    def run_module(self, module: types.ModuleType, path: Path, *,
                   relative_imports: bool = False) -> None:
        """Check the source at ``path`` and run it in ``module``."""
        source = _read_source(path)
        validate_source(source, str(path), relative_imports=relative_imports)
        exec(compile(source, str(path), "exec"), module.__dict__)

    def load_plugin(self, plugin_info: Any, config: dict[str, Any] | None = None) -> Any:
        """1.0 API: load ``plugin_info``'s entry point, instantiate it and initialize it."""
        folder = Path(plugin_info.path)
        root = folder if folder.is_dir() else getattr(plugin_info, "root", None)
        plugin_class = self.load_class(_source_file(plugin_info), plugin_info.entry_point, root)
        plugin = plugin_class()
        plugin.initialize(config or {})
        return plugin


def _source_file(plugin_info: Any) -> Path:
    """The plugin's source file: ``path`` itself, or ``path / file`` when path is a folder."""
    path = Path(plugin_info.path)
    if path.is_dir():
        return path / str(getattr(plugin_info, "file", None) or "plugin.py")
    return path


def _read_source(path: Path) -> str:
    size = path.stat().st_size
    if size > _MAX_SOURCE_BYTES:
        raise SandboxViolation(
            f"{path}: source is {size} bytes, more than the sandbox's {_MAX_SOURCE_BYTES}",
            file=str(path),
        )
    return path.read_text(encoding="utf-8")
