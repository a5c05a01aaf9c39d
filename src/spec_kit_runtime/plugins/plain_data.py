"""Manifest values as plain data: a bounded copy of JSON-like values, or why not.

A manifest's fields are copied through here so that what a ``PluginInfo`` holds can cross
to another process as it is, and bounded because YAML aliases can fan a small file out
into an exponentially large value.
"""

from __future__ import annotations

import math
from typing import Any

MAX_NESTING = 32
MAX_NODES = 10_000


def kind(value: object) -> str:
    """The name of ``value``'s type as a manifest's author would say it (``null`` for None)."""
    return "null" if value is None else type(value).__name__


class Budget:
    """Bounds the work spent walking a value (YAML aliases can fan out exponentially)."""

    def __init__(self) -> None:
        self.left = MAX_NODES

    def spend(self) -> bool:
        self.left -= 1
        return self.left >= 0


def plain(value: Any, where: str, budget: Budget, depth: int = 0) -> Any:
    """Copy of ``value`` if it is plain JSON-like data; raise ValueError otherwise.

    ``where`` is the path inside the field ("" for the field itself), for the message.
    """
    if depth > MAX_NESTING or not budget.spend():
        raise ValueError(f"{_at(where)}is nested too deeply or too large")
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{_at(where)}is {value}: NaN and Infinity are not allowed")
        return value
    if isinstance(value, list):
        return [plain(item, f"{where}[{i}]", budget, depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            _plain_key(key, where): plain(item, f"{where}.{key}".lstrip("."), budget, depth + 1)
            for key, item in value.items()
        }
    raise ValueError(
        f"{_at(where)}must be a string, number, boolean, null, list or mapping, got {kind(value)}"
    )


def _at(where: str) -> str:
    return f"at {where}: " if where else ""


def _plain_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"{_at(where)}keys must be strings, got {kind(key)} key {key!r}")
    return key
