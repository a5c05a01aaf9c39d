"""A plugin's static facts: what its own code says of itself, read once in its worker.

1.0 callers read ``container.plugins[ID].metadata`` and ``.get_config_schema()`` from the
plugin object in their own process. In 2.0 that object lives in a worker, so the worker
reads both once, when the plugin is loaded, and they travel with the load phase's answer
as plain data (``facts_of``); the caller turns them back into the contracts' types
(``metadata_from``). Both sides import this module, so the shape is defined once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginCapability

log = logging.getLogger(__name__)
_TEXT = ("name", "version", "author", "description", "homepage", "license")


@dataclass(frozen=True)
class PluginFacts:
    """The plugin's metadata and config schema, as its own code gave them."""

    metadata: IPluginMetadata
    config_schema: dict[str, Any] | None
    config_schema_error: str | None = None  # get_config_schema() raised this


def facts_of(plugin: Any) -> dict[str, Any]:
    """Plain data of ``plugin.metadata`` and ``plugin.get_config_schema()`` (in the worker).

    Reading the metadata may raise: a plugin without readable metadata fails its load, as
    it would have in 1.0 the first time anyone read it. A ``get_config_schema`` that
    raises is reported as such, not fatal: 1.0 only called it when asked.
    """
    metadata = plugin.metadata
    data: dict[str, Any] = {key: _text(getattr(metadata, key, None)) for key in _TEXT}
    data["dependencies"] = [str(d) for d in getattr(metadata, "dependencies", None) or ()]
    data["capabilities"] = [str(getattr(c, "value", c))
                            for c in getattr(metadata, "capabilities", None) or ()]
    data["config_schema"] = getattr(metadata, "config_schema", None) or {}
    facts: dict[str, Any] = {"metadata": data, "config_schema": None}
    try:
        facts["config_schema"] = plugin.get_config_schema()
    except Exception as exc:
        log.warning("get_config_schema() raised %s: %s", type(exc).__name__, exc)
        facts["config_schema_error"] = f"{type(exc).__name__}: {exc}"
    return facts


def facts_from(data: object) -> PluginFacts | None:
    """The facts a load answer carried (None when it carried none, or nothing readable)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("metadata"), Mapping):
        return None
    schema = data.get("config_schema")
    error = data.get("config_schema_error")
    return PluginFacts(metadata_from(data["metadata"]),
                       dict(schema) if isinstance(schema, Mapping) else None,
                       error if isinstance(error, str) else None)


def metadata_from(data: Mapping[str, Any]) -> IPluginMetadata:
    """An ``IPluginMetadata`` rebuilt from plain data; capabilities become
    ``PluginCapability`` members where they name one (other values stay strings)."""
    known = {c.value: c for c in PluginCapability}
    capabilities = [known.get(c, c) for c in data.get("capabilities") or ()]
    schema = data.get("config_schema")
    return IPluginMetadata(
        name=str(data.get("name") or ""), version=str(data.get("version") or ""),
        author=str(data.get("author") or ""), description=str(data.get("description") or ""),
        homepage=data.get("homepage"), license=data.get("license"),
        dependencies=list(data.get("dependencies") or ()), capabilities=capabilities,
        config_schema=dict(schema) if isinstance(schema, Mapping) else {},
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
