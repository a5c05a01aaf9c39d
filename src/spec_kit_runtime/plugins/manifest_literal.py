"""The manifest of a bare ``*_plugin.py``: its ``PLUGIN_INFO`` dict, read with ``ast``.

The file is parsed, never imported or executed, and the value must be a plain literal:
reading a plugin's metadata must not run its code (1.0 imported the plugin for it).
"""

from __future__ import annotations

import ast

from spec_kit_runtime.errors import ManifestError

PLUGIN_INFO_NAME = "PLUGIN_INFO"

_LITERAL_NODES = (
    ast.Expression,
    ast.Constant,
    ast.Dict,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.UnaryOp,
    ast.BinOp,
    ast.UAdd,
    ast.USub,
    ast.Add,
    ast.Sub,
    ast.Load,
)
_NODE_NAMES = {
    ast.Call: "a function call",
    ast.Name: "a variable name",
    ast.Attribute: "an attribute",
    ast.Lambda: "a lambda",
    ast.JoinedStr: "an f-string",
    ast.Subscript: "a subscript",
}


def plugin_info_literal(source: bytes, where: str) -> object:
    """Find the top-level ``PLUGIN_INFO = {...}`` and evaluate it as a literal only."""
    try:
        tree = ast.parse(source, filename=where)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None)
        at = f" at line {line}" if line else ""
        raise ManifestError(where, None, f"is not valid Python{at}: {exc}") from exc
    values = [value for node in tree.body if (value := _plugin_info_value(node)) is not None]
    if not values:
        raise ManifestError(where, PLUGIN_INFO_NAME, "no top-level PLUGIN_INFO = {...} found")
    if len(values) > 1:
        raise ManifestError(where, PLUGIN_INFO_NAME, "is assigned more than once")
    value = values[0]
    bad = next((n for n in ast.walk(value) if not isinstance(n, _LITERAL_NODES)), None)
    if bad is not None:
        kind = _NODE_NAMES.get(type(bad), type(bad).__name__)
        raise ManifestError(
            where,
            PLUGIN_INFO_NAME,
            f"must be a plain literal (it is read, never run), but contains {kind}"
            f" at line {getattr(bad, 'lineno', value.lineno)}",
        )
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
        raise ManifestError(where, PLUGIN_INFO_NAME, f"is not a plain literal: {exc}") from exc


def _plugin_info_value(node: ast.stmt) -> ast.expr | None:
    """The value assigned to PLUGIN_INFO by this top-level statement, if it is one."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    else:
        return None
    named = any(isinstance(t, ast.Name) and t.id == PLUGIN_INFO_NAME for t in targets)
    return node.value if named else None
