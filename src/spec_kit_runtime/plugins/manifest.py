"""Reading one manifest file strictly: ``read_manifest``, without running plugin code.

A manifest is ``plugin.json``, ``plugin.yaml`` / ``plugin.yml``, or the ``PLUGIN_INFO``
dict of a bare ``*_plugin.py`` (``manifest_literal``). The file is checked before it is
read (size, a regular file, no symbolic link out of its folder), then its data goes to
``manifest_fields`` to be validated.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import ManifestError

from .manifest_fields import parse_manifest_data
from .manifest_literal import plugin_info_literal
from .plugin_info import PluginInfo
from .security import PathTraversalError, validate_plugin_path

MAX_MANIFEST_BYTES = 64 * 1024
MAX_SOURCE_BYTES = 1024 * 1024
MANIFEST_NAMES = ("plugin.json", "plugin.yaml", "plugin.yml")


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
        data = plugin_info_literal(source, where)
        return parse_manifest_data(data, path, path.parent, default_file=path.name)
    raise ManifestError(
        where, None, f"not a manifest: expected one of {', '.join(MANIFEST_NAMES)} or a .py file"
    )


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
