"""Manifest fields validated, one check per field, into a ``PluginInfo`` (``parse_manifest_data``).

Each problem becomes a ``ManifestError`` naming the file and the field, so a user can fix
it; 1.0 instead guessed (default version, rewritten id).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import ManifestError
from spec_kit_runtime.plugins.requirements import (
    MAX_REQUIREMENTS,
    requirement_problem,
    split_dependencies,
)
from spec_kit_runtime.policy.patterns import pattern_problem
from spec_kit_runtime.policy.restart import RestartPolicy, policy_from_data

from .plain_data import Budget, kind, plain
from .plugin_info import PluginInfo
from .security import (
    PathTraversalError,
    is_semver,
    is_valid_plugin_id,
    plugin_id_problem,
    validate_plugin_path,
)

MAX_NAME_LENGTH = 128
DEFAULT_ENTRY_POINT = "Plugin"
TEXT_FIELDS = ("description", "author", "license", "homepage")
START_METHODS = ("fork", "spawn")


def parse_manifest_data(
    data: object, source: Path, plugin_dir: Path, *, default_file: str | None = None
) -> PluginInfo:
    """Validate manifest ``data`` read from ``source`` for the plugin in ``plugin_dir``.

    ``default_file`` replaces the ``{id}_plugin.py`` default (a bare plugin file is its
    own code). Raises ManifestError naming ``source`` and the offending field.
    """
    where = str(source)
    raw = _top_level(data, where)
    name = _name(raw, where)
    plugin_id = _plugin_id(raw, where, name)
    version = _version(raw, where)
    entry_point = _entry_point(raw, where)
    file_text = _str_field(raw, where, "file", default_file or f"{plugin_id}_plugin.py")
    sandbox = _bool_field(raw, where, "sandbox", True)
    isolated = _bool_field(raw, where, "process_isolated", False)
    network = _bool_field(raw, where, "network", False)
    allowed = _allowed_messages(raw, where)
    dependencies, requirements = _dependencies(raw, where, plugin_id)
    _restart(raw, where)
    start_method = _start_method(raw, where)
    for key in TEXT_FIELDS:
        if key in raw:
            _str_field(raw, where, key, "")
    path = _plugin_file(Path(plugin_dir), file_text, where)
    explicit = {
        "id": plugin_id,
        "name": name,
        "version": version,
        "entry_point": entry_point,
        "file": file_text,
        "sandbox": sandbox,
        "process_isolated": isolated,
        "allowed_messages": allowed,
        "dependencies": [*dependencies, *requirements],
        "network": network,
    }
    return PluginInfo(
        id=plugin_id,
        name=name,
        version=version,
        path=path,
        entry_point=entry_point,
        manifest={**raw, **explicit},
        process_isolated=isolated,
        sandbox_enabled=sandbox,
        dependencies=tuple(dependencies),
        requirements=tuple(requirements),
        allowed_messages=tuple(allowed),
        manifest_path=Path(os.path.abspath(source)),
        start_method=start_method,
        network=network,
    )


def _top_level(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ManifestError(where, None, f"must be a mapping of fields, got {kind(data)}")
    budget = Budget()
    result: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ManifestError(where, str(key), f"field names must be strings, got {kind(key)}")
        try:
            result[key] = plain(value, "", budget)
        except ValueError as exc:
            raise ManifestError(where, key, str(exc)) from exc
    return result


def _str_field(raw: Mapping[str, Any], where: str, key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ManifestError(where, key, f"must be a string, got {kind(value)}")
    return value


def _bool_field(raw: Mapping[str, Any], where: str, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ManifestError(where, key, f"must be true or false, got {kind(value)}")
    return value


def _name(raw: Mapping[str, Any], where: str) -> str:
    if "name" not in raw:
        raise ManifestError(where, "name", "is required")
    name = _str_field(raw, where, "name", "")
    if not name.strip():
        raise ManifestError(where, "name", "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ManifestError(where, "name", f"is longer than {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise ManifestError(where, "name", "must not contain control characters")
    return name


def _plugin_id(raw: Mapping[str, Any], where: str, name: str) -> str:
    if "id" not in raw:
        if is_valid_plugin_id(name):
            return name
        raise ManifestError(
            where,
            "id",
            f"is missing, and the name {name!r} is not a valid plugin id to use "
            "instead (ids use only a-z, 0-9, '_' and '-', 1 to 64 characters)",
        )
    problem = plugin_id_problem(raw["id"])
    if problem is not None:
        raise ManifestError(where, "id", problem)
    value: str = raw["id"]
    return value


def _version(raw: Mapping[str, Any], where: str) -> str:
    if "version" not in raw:
        raise ManifestError(where, "version", "is required (a semantic version such as 1.0.0)")
    version = _str_field(raw, where, "version", "")
    if not is_semver(version):
        raise ManifestError(
            where, "version", f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)"
        )
    return version


def _entry_point(raw: Mapping[str, Any], where: str) -> str:
    entry = _str_field(raw, where, "entry_point", DEFAULT_ENTRY_POINT)
    if not entry.isidentifier():
        raise ManifestError(where, "entry_point", f"{entry!r} is not a Python identifier")
    return entry


def _str_list(
    raw: Mapping[str, Any], where: str, key: str, check: Callable[[str], str | None]
) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ManifestError(where, key, f"must be a list of strings, got {kind(value)}")
    for index, item in enumerate(value):
        problem = check(item)
        if problem is not None:
            raise ManifestError(where, key, f"item {index}: {problem}")
    return list(value)


def _allowed_messages(raw: Mapping[str, Any], where: str) -> list[str]:
    return _str_list(raw, where, "allowed_messages", pattern_problem)


def _dependencies(raw: Mapping[str, Any], where: str, plugin_id: str
                  ) -> tuple[list[str], list[str]]:
    """Plugin ids and package requirements (rule in ``requirements``), each as written."""
    entries = _str_list(raw, where, "dependencies", _dependency_problem)
    if plugin_id in entries:
        raise ManifestError(where, "dependencies", f"cannot depend on itself ({plugin_id!r})")
    repeated = sorted(entry for entry, count in Counter(entries).items() if count > 1)
    if repeated:
        raise ManifestError(where, "dependencies", f"lists {repeated[0]!r} more than once")
    ids, requirements = split_dependencies(entries)
    if len(requirements) > MAX_REQUIREMENTS:
        raise ManifestError(where, "dependencies", f"lists {len(requirements)} package "
                            f"requirements, more than {MAX_REQUIREMENTS}")
    return ids, requirements


def _dependency_problem(value: object) -> str | None:
    """None for a plugin id or a package requirement; else why the entry is neither."""
    problem = plugin_id_problem(value)
    if problem is None or not isinstance(value, str) or not value:
        return problem
    return requirement_problem(value)


def _start_method(raw: Mapping[str, Any], where: str) -> str | None:
    """An optional ``start_method``: ``spawn`` asks for a fresh interpreter, not a fork."""
    value = raw.get("start_method")
    if value is not None and value not in START_METHODS:
        raise ManifestError(where, "start_method", f"must be fork or spawn, got {value!r}")
    return value


def _restart(raw: Mapping[str, Any], where: str) -> None:
    """An optional ``restart`` mapping: the plugin's own restart policy settings."""
    value = raw.get("restart", {})
    if not isinstance(value, dict):
        raise ManifestError(where, "restart", f"must be a mapping, got {kind(value)}")
    try:
        policy_from_data(value, RestartPolicy())
    except ValueError as exc:
        raise ManifestError(where, "restart", str(exc)) from None


def _plugin_file(plugin_dir: Path, file_text: str, where: str) -> Path:
    """The resolved plugin source: relative, inside the folder, an existing ``.py`` file."""
    try:
        path = validate_plugin_path(plugin_dir, file_text)
    except PathTraversalError as exc:
        raise ManifestError(where, "file", f"must stay inside the plugin folder: {exc}") from exc
    if path.suffix != ".py":
        raise ManifestError(where, "file", f"{file_text!r} is not a .py file")
    if not path.exists():
        raise ManifestError(where, "file", f"{file_text!r} does not exist in {str(plugin_dir)!r}")
    if not path.is_file():
        raise ManifestError(where, "file", f"{file_text!r} is not a regular file")
    return path
