"""Plugin manifests: read one file and validate it strictly, without running plugin code.

A manifest is ``plugin.json``, ``plugin.yaml`` / ``plugin.yml``, or the ``PLUGIN_INFO``
dict of a bare ``*_plugin.py`` (read with ``ast``, never imported). Every problem becomes
a ``ManifestError`` naming the file and the field, so a user can fix it; 1.0 instead
guessed (default version, rewritten id) or imported the plugin to read its metadata.
"""

from __future__ import annotations

import ast
import json
import math
import os
import stat
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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

from .security import (
    PathTraversalError,
    is_semver,
    is_valid_plugin_id,
    plugin_id_problem,
    validate_plugin_path,
)

MAX_MANIFEST_BYTES = 64 * 1024
MAX_SOURCE_BYTES = 1024 * 1024
MAX_NAME_LENGTH = 128
MAX_NESTING = 32
MAX_NODES = 10_000
MANIFEST_NAMES = ("plugin.json", "plugin.yaml", "plugin.yml")
PLUGIN_INFO_NAME = "PLUGIN_INFO"
DEFAULT_ENTRY_POINT = "Plugin"
TEXT_FIELDS = ("description", "author", "license", "homepage")


@dataclass(frozen=True)
class PluginInfo:
    """A validated plugin: what to run, and the manifest it came from.

    ``manifest`` is the validated data with every default made explicit, so that
    ``to_manifest`` can rebuild an equal info in another process.
    """

    id: str
    name: str
    version: str
    path: Path
    entry_point: str
    manifest: Mapping[str, Any] = field(hash=False)
    process_isolated: bool = False
    sandbox_enabled: bool = True
    dependencies: tuple[str, ...] = ()  # plugin ids only: started first, stopped last
    allowed_messages: tuple[str, ...] = ()
    manifest_path: Path | None = None
    start_method: str | None = None  # fork or spawn; None: the runtime's start_method
    network: bool = False  # asks for network: no network namespace, TCP allowed
    # PEP 508 package requirements from ``dependencies``, as written; checked at load
    requirements: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        """The plugin folder: where its manifest lives (or its file, lacking one)."""
        return (self.manifest_path or self.path).parent

    def to_manifest(self) -> dict[str, Any]:
        """Manifest data that ``parse_manifest_data(data, manifest_path, root)`` turns back
        into an equal info; used to hand an info to another process, which re-validates it.

        A deep copy of plain data (JSON/msgpack-safe). Raises ValueError only for a
        hand-built info whose ``manifest`` holds something else.
        """
        data = _plain(dict(self.manifest), "", _Budget())
        assert isinstance(data, dict)
        data.update(
            id=self.id,
            name=self.name,
            version=self.version,
            entry_point=self.entry_point,
            file=data.get("file", self.path.relative_to(self.root.resolve()).as_posix()),
            sandbox=self.sandbox_enabled,
            process_isolated=self.process_isolated,
            allowed_messages=list(self.allowed_messages),
            dependencies=[*self.dependencies, *self.requirements],
        )
        return data


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


def read_manifest(path: Path) -> PluginInfo:
    """Read and validate one manifest file, or a bare plugin's ``PLUGIN_INFO``.

    The size is checked before reading, a symlink may not lead out of the plugin's
    folder, and a ``.py`` file is parsed, never imported or executed.
    """
    path = Path(path)
    where = str(path)
    if path.name in MANIFEST_NAMES:
        text = _decode(_read_capped(path, MAX_MANIFEST_BYTES), where)
        if path.suffix == ".json":
            data = _load_json(text, where)
        else:  # PyYAML costs 10 ms to import: only where a YAML manifest is read
            from .manifest_yaml import load_yaml
            data = load_yaml(text, where)
        return parse_manifest_data(data, path, path.parent)
    if path.suffix == ".py":
        source = _read_capped(path, MAX_SOURCE_BYTES)
        data = _plugin_info_literal(source, where)
        return parse_manifest_data(data, path, path.parent, default_file=path.name)
    raise ManifestError(
        where, None, f"not a manifest: expected one of {', '.join(MANIFEST_NAMES)} or a .py file"
    )


# --- reading ---------------------------------------------------------------------------


def _read_capped(path: Path, limit: int) -> bytes:
    """Read a regular file of at most ``limit`` bytes that stays in its own folder."""
    where = str(path)
    target = _real_target(path)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ManifestError(where, None, f"cannot open: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError(where, None, "is not a regular file")
        if info.st_size > limit:
            raise ManifestError(where, None, _too_big(info.st_size, limit))
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise ManifestError(where, None, _too_big(len(content), limit))
    return content


def _decode(content: bytes, where: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(where, None, f"is not valid UTF-8 (byte {exc.start})") from exc


def _real_target(path: Path) -> Path:
    """The file to open: ``path`` itself, or a symlink's target when it stays in the folder."""
    if not path.is_symlink():
        return path
    try:
        return validate_plugin_path(path.parent, path.name)
    except PathTraversalError as exc:
        raise ManifestError(
            str(path), None, "is a symbolic link that leads outside its folder"
        ) from exc


def _too_big(size: int, limit: int) -> str:
    return f"is {size} bytes, more than the {limit} byte limit"


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _load_json(text: str, where: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            where, None, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except _DuplicateKey as exc:
        raise ManifestError(where, str(exc), "is given more than once") from exc
    except (ValueError, RecursionError) as exc:
        raise ManifestError(where, None, f"malformed JSON: {exc}") from exc


# --- bare plugin files -----------------------------------------------------------------

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


def _plugin_info_literal(source: bytes, where: str) -> object:
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


# --- validation ------------------------------------------------------------------------


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


class _Budget:
    """Bounds the work spent walking a value (YAML aliases can fan out exponentially)."""

    def __init__(self) -> None:
        self.left = MAX_NODES

    def spend(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _plain(value: Any, where: str, budget: _Budget, depth: int = 0) -> Any:
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
        return [_plain(item, f"{where}[{i}]", budget, depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            _plain_key(key, where): _plain(item, f"{where}.{key}".lstrip("."), budget, depth + 1)
            for key, item in value.items()
        }
    raise ValueError(
        f"{_at(where)}must be a string, number, boolean, null, list or mapping, got {_kind(value)}"
    )


def _at(where: str) -> str:
    return f"at {where}: " if where else ""


def _plain_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"{_at(where)}keys must be strings, got {_kind(key)} key {key!r}")
    return key


def _top_level(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ManifestError(where, None, f"must be a mapping of fields, got {_kind(data)}")
    budget = _Budget()
    result: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ManifestError(where, str(key), f"field names must be strings, got {_kind(key)}")
        try:
            result[key] = _plain(value, "", budget)
        except ValueError as exc:
            raise ManifestError(where, key, str(exc)) from exc
    return result


def _str_field(raw: Mapping[str, Any], where: str, key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ManifestError(where, key, f"must be a string, got {_kind(value)}")
    return value


def _bool_field(raw: Mapping[str, Any], where: str, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ManifestError(where, key, f"must be true or false, got {_kind(value)}")
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
        raise ManifestError(where, key, f"must be a list of strings, got {_kind(value)}")
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


START_METHODS = ("fork", "spawn")


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
        raise ManifestError(where, "restart", f"must be a mapping, got {_kind(value)}")
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
