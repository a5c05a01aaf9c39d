"""IConfigService: a plugin's view of its own config section, and nothing else of the config.

The section is what the plugin's ``initialize`` gets (``plugins.ID.config`` for ``run``, or
the ``config`` of ``load_plugin``). Keys use dot notation (``"output.format"``). ``set``
changes this view only, for as long as the plugin's worker runs: a restarted worker
starts again from the configured values, as its ``initialize`` does. ``save`` is refused:
the runtime config belongs to whoever runs the supervisor (it also says which folders a
plugin may use), so a plugin cannot write it; data a plugin wants to keep belongs in
IStateService. The view's size is bounded (``max_bytes``). Pure: no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from spec_kit_runtime.errors import ServiceError
from spec_kit_runtime.wire.codec import pack_value

MAX_KEY = 1024


class ConfigView:
    """One worker's view of its plugin's config section."""

    def __init__(self, section: dict[str, Any], max_bytes: int) -> None:
        self._data = copy.deepcopy(section)
        self.max_bytes = max_bytes

    def get(self, key: str) -> tuple[bool, Any]:
        """Whether ``key`` (dot notation) is set, and its value."""
        node: Any = self._data
        for part in _parts(key):
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
        return True, copy.deepcopy(node)

    def get_section(self, section: str) -> dict[str, Any]:
        """The mapping at ``section``; empty when it is not set."""
        found, value = self.get(section)
        if not found:
            return {}
        if not isinstance(value, dict):
            raise ServiceError(f"config '{section}' is a {type(value).__name__}, not a section",
                               key=section)
        return value

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` in this view, making the sections on its way (all or nothing)."""
        *path, last = _parts(key)
        data = copy.deepcopy(self._data)
        node = data
        for part in path:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ServiceError(f"config '{key}': '{part}' is a {type(child).__name__}, "
                                   "not a section", key=key)
            node = child
        node[last] = copy.deepcopy(value)
        size = len(pack_value(data))
        if size > self.max_bytes:
            raise ServiceError(f"config '{key}' refused: the plugin's config would be {size} "
                               f"bytes, more than {self.max_bytes}", key=key)
        self._data = data

    @staticmethod
    def save() -> None:
        """Refused: see the module docstring."""
        raise ServiceError(
            "IConfigService.save is refused: the runtime config belongs to whoever runs the "
            "supervisor, and set() changes only this worker's view; keep data in "
            "IStateService")


def _parts(key: str) -> list[str]:
    parts = key.split(".")
    if len(key) > MAX_KEY or not all(parts):
        raise ServiceError(f"a config key is dot-separated names (1 to {MAX_KEY} characters), "
                           f"not {key[:100]!r}", key=key[:MAX_KEY])
    return parts
