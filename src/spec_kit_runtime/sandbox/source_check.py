"""Source validation by AST (``validate_source``): a plugin's source is checked before it runs.

Refused, each with its line: blocked imports, dangerous builtins by name, dunder attributes
(bar a small allowlist), frame/traceback attributes, attribute names of blocked modules
(``logging.sys``), ``str.format`` fields that reach attributes, known gadget names
(``attrgetter``, ``Formatter``, ...), metaclasses, ``match`` class patterns naming
forbidden attributes; and the builtin names that ``match`` class patterns trust (``int``,
``str``, ...) may not be rebound.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Iterable
from typing import NoReturn

from spec_kit_runtime.errors import SandboxViolation

from .rules import BLOCKED_MODULES, GADGETS, is_blocked_module

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


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")



class _Validator(ast.NodeVisitor):
    """Collects ``(line, what)`` for every forbidden construct in a module.

    ``relative_imports``: the module is in the plugin's package (``sandbox.packages``), so
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
        elif name in GADGETS:
            self._flag(node, f"import of '{name}' from '{module}'")

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        dunder = _is_dunder(name) and name not in _ALLOWED_DUNDER_NAMES
        if dunder or name in _FORBIDDEN_NAMES or name in GADGETS:
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
    if attr in GADGETS:
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
