"""Find plugins in search paths by reading manifests; never import or run plugin code.

A folder holding a manifest (``plugin.json`` / ``plugin.yaml`` / ``plugin.yml``) is a
plugin folder: it is read as one plugin and not searched further. Elsewhere each
``*_plugin.py`` is a bare plugin whose ``PLUGIN_INFO`` is parsed. Problems are collected
as ``ManifestError``s and returned, so one bad plugin neither hides the others nor stops
the scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from spec_kit_runtime.errors import ManifestError

from .manifest import MANIFEST_NAMES, read_manifest
from .plugin_info import PluginInfo

MAX_DEPTH = 6
SKIPPED_DIRS = frozenset({"__pycache__", "tests", "test"})
PLUGIN_SUFFIX = "_plugin.py"


@dataclass(frozen=True)
class DiscoveryResult:
    """Plugins found (sorted by id) and the errors met on the way (in scan order)."""

    plugins: tuple[PluginInfo, ...]
    errors: tuple[ManifestError, ...]

    def by_id(self) -> dict[str, PluginInfo]:
        """The plugins keyed by id."""
        return {info.id: info for info in self.plugins}


def discover(search_paths: Iterable[Path]) -> DiscoveryResult:
    """Scan ``search_paths`` in order; a later path's plugin replaces an earlier one's
    with the same id (1.0: project plugins take precedence over user plugins)."""
    found: dict[str, PluginInfo] = {}
    errors: list[ManifestError] = []
    for search_path in search_paths:
        found.update(_scan_search_path(Path(search_path), errors))
    plugins = tuple(sorted(found.values(), key=lambda info: info.id))
    return DiscoveryResult(plugins=plugins, errors=tuple(errors))


def _scan_search_path(root: Path, errors: list[ManifestError]) -> dict[str, PluginInfo]:
    """Plugins of one search path by id; a second plugin with a taken id is an error."""
    if not root.exists():
        errors.append(ManifestError(str(root), None, "search path does not exist"))
        return {}
    if not root.is_dir():
        errors.append(ManifestError(str(root), None, "search path is not a directory"))
        return {}
    plugins: dict[str, PluginInfo] = {}
    for candidate in _candidates(root, errors):
        try:
            info = read_manifest(candidate)
        except ManifestError as exc:
            errors.append(exc)
            continue
        first = plugins.get(info.id)
        if first is None:
            plugins[info.id] = info
        else:
            errors.append(_duplicate(info, first))
    return plugins


def _duplicate(info: PluginInfo, first: PluginInfo) -> ManifestError:
    other = first.manifest_path or first.path
    return ManifestError(
        str(info.manifest_path or info.path),
        "id",
        f"plugin id {info.id!r} is already used by {str(other)!r} in the same search path; "
        "keeping that one",
    )


def _candidates(root: Path, errors: list[ManifestError]) -> Iterator[Path]:
    """Manifest and bare plugin files under ``root``, in sorted, depth-first order."""
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        entries = _list_dir(folder, errors)
        if entries is None:
            continue
        manifests = [e for e in entries if e.name in MANIFEST_NAMES]
        if len(manifests) > 1:
            names = ", ".join(e.name for e in manifests)
            errors.append(ManifestError(str(folder), None, f"has more than one manifest ({names})"))
            continue
        if manifests:
            yield Path(manifests[0].path)
            continue
        yield from (Path(e.path) for e in entries if _is_bare_plugin(e))
        if depth < MAX_DEPTH:
            subdirs = [Path(e.path) for e in entries if _is_searched_dir(e)]
            stack.extend((sub, depth + 1) for sub in reversed(subdirs))


def _list_dir(folder: Path, errors: list[ManifestError]) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda entry: entry.name)
    except OSError as exc:
        errors.append(ManifestError(str(folder), None, f"cannot list folder: {exc.strerror}"))
        return None


def _is_bare_plugin(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    if not name.endswith(PLUGIN_SUFFIX) or name.startswith(("test_", ".")):
        return False
    try:
        return not entry.is_dir()
    except OSError:
        return False


def _is_searched_dir(entry: os.DirEntry[str]) -> bool:
    """Real subfolders worth searching: not symlinked, hidden, caches or test folders."""
    if entry.name.startswith(".") or entry.name in SKIPPED_DIRS:
        return False
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
