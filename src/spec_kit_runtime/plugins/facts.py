"""A plugin's static facts: what its own code says of itself, read once in its worker.

1.0 callers read ``container.plugins[ID].metadata`` and ``.get_config_schema()`` from the
plugin object in their own process. In 2.0 that object lives in a worker, so the worker
reads both once, when the plugin is loaded (``facts_of``), and they travel with the load
phase's answer as one msgpack blob. The worker is not trusted: the supervisor checks the
blob's size before decoding it, decodes it with no extension types, and checks its shape
(``checked``) before keeping it or handing it to any client. Clients turn the checked data
back into the contracts' types (``facts_from``). Every side imports this module, so the
shape is defined once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
from spec_kit_contracts import IPluginMetadata, PluginCapability

from spec_kit_runtime.errors import EncodeError, LifecycleError
from spec_kit_runtime.wire.codec import pack_value

log = logging.getLogger(__name__)
MAX_FACTS_BYTES = 64 * 1024
MAX_FACTS_ASKED = 200  # plugins whose facts one 'plugins' answer may carry (12.5 MiB)
MAX_DEPTH = 32
_TEXT = ("name", "version", "author", "description")
_OPTIONAL_TEXT = ("homepage", "license")
_LISTS = ("dependencies", "capabilities")


class OtherCapability(str):
    """A capability the contracts do not name, read like a ``PluginCapability``
    (``.value``), as Spec-Kit's CLI reads every capability."""

    @property
    def value(self) -> str:
        return str(self)


@dataclass(frozen=True)
class PluginFacts:
    """The plugin's metadata and config schema, as its own code gave them."""

    metadata: IPluginMetadata
    config_schema: dict[str, Any] | None
    config_schema_error: str | None = None  # get_config_schema() raised, or gave no data


# -- in the worker ---------------------------------------------------------------------------

def facts_of(plugin: Any) -> bytes:
    """The packed facts of ``plugin`` (in its worker).

    Metadata that cannot be read fails the load, as it would have in 1.0 the first time
    anyone read it. A ``get_config_schema()`` that raises, or answers with something that
    is not plain data within the size limit, is reported as such: 1.0 only called it when
    asked.
    """
    metadata = plugin.metadata
    data: dict[str, Any] = {key: str(getattr(metadata, key, "") or "") for key in _TEXT}
    for key in _OPTIONAL_TEXT:
        value = getattr(metadata, key, None)
        data[key] = None if value is None else str(value)
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
    try:
        return _packed(facts)
    except (EncodeError, ValueError) as exc:  # the schema is the usual suspect: drop it
        facts["config_schema"] = None
        facts["config_schema_error"] = f"it cannot be sent: {exc}"[:500]
    try:
        return _packed(facts)
    except (EncodeError, ValueError) as exc:
        raise LifecycleError(f"the plugin's metadata cannot be sent: {exc}"[:500]) from None


def _packed(facts: dict[str, Any]) -> bytes:
    _check_plain(facts, "facts", 0)
    blob = pack_value(facts)
    if len(blob) > MAX_FACTS_BYTES:
        raise ValueError(f"{len(blob)} bytes, more than the {MAX_FACTS_BYTES} byte limit")
    return blob


# -- in the supervisor -----------------------------------------------------------------------

def checked(blob: object) -> dict[str, Any]:
    """The facts in ``blob`` as plain data; ValueError saying why they are unusable."""
    if not isinstance(blob, bytes):
        raise ValueError(f"facts must be bytes, not {type(blob).__name__}")
    if len(blob) > MAX_FACTS_BYTES:
        raise ValueError(f"facts of {len(blob)} bytes, more than {MAX_FACTS_BYTES}")
    try:
        facts = msgpack.unpackb(blob, raw=False, strict_map_key=True)
    except Exception as exc:
        raise ValueError(f"malformed facts: {type(exc).__name__}") from None
    _check_plain(facts, "facts", 0)
    if not isinstance(facts, dict) or not isinstance(facts.get("metadata"), dict):
        raise ValueError("facts must be a map with a 'metadata' map")
    metadata = facts["metadata"]
    for key in _TEXT:
        _expect(isinstance(metadata.get(key), str), f"metadata.{key} must be a string")
    for key in _OPTIONAL_TEXT:
        value = metadata.get(key)
        _expect(value is None or isinstance(value, str), f"metadata.{key} must be a string")
    for key in _LISTS:
        items = metadata.get(key)
        _expect(isinstance(items, list) and all(isinstance(i, str) for i in items),
                f"metadata.{key} must be a list of strings")
    _expect(isinstance(metadata.get("config_schema"), dict),
            "metadata.config_schema must be a map")
    schema, error = facts.get("config_schema"), facts.get("config_schema_error")
    _expect(schema is None or isinstance(schema, dict), "config_schema must be a map")
    _expect(error is None or isinstance(error, str), "config_schema_error must be a string")
    unknown = set(facts) - {"metadata", "config_schema", "config_schema_error"}
    _expect(not unknown, f"unknown fields {sorted(unknown)}")
    return facts


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise ValueError(problem)


def _check_plain(value: Any, where: str, depth: int) -> None:
    """JSON-like data only (maps with string keys), at most MAX_DEPTH deep."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} deep")
    if value is None or type(value) in (str, bool, int):
        return
    if type(value) is float:
        _expect(math.isfinite(value), f"{where} is not a finite number")
    elif type(value) is list:
        for item in value:
            _check_plain(item, where, depth + 1)
    elif type(value) is dict:
        for key, item in value.items():
            _expect(type(key) is str, f"{where} has a key that is not a string")
            _check_plain(item, f"{where}.{key}"[:200], depth + 1)
    else:
        raise ValueError(f"{where} holds a {type(value).__name__}, not plain data")


# -- in a client -----------------------------------------------------------------------------

def facts_from(data: Mapping[str, Any]) -> PluginFacts:
    """The contracts' view of facts the supervisor checked (``checked``)."""
    metadata = data["metadata"]
    known = {c.value: c for c in PluginCapability}
    schema = data.get("config_schema")
    return PluginFacts(
        IPluginMetadata(
            name=metadata["name"], version=metadata["version"], author=metadata["author"],
            description=metadata["description"], homepage=metadata["homepage"],
            license=metadata["license"], dependencies=list(metadata["dependencies"]),
            capabilities=[known.get(c) or OtherCapability(c) for c in metadata["capabilities"]],
            config_schema=dict(metadata["config_schema"]),
        ),
        dict(schema) if isinstance(schema, dict) else None,
        data.get("config_schema_error"),
    )
