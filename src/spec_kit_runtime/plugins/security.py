"""Security helpers: plugin ids, versions and paths that must stay inside their folder.

These keep 1.0's names (``validate_path``, ``validate_plugin_path``, ``sanitize_plugin_id``)
but are stricter: a bad plugin id is refused, never rewritten, and every path check is made
on the fully resolved path (symlinks followed), so neither ``..`` nor a symlink can leave
the allowed folder. Pure apart from resolving paths on the filesystem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePath

from spec_kit_runtime.errors import RuntimeFailure

MAX_PLUGIN_ID_LENGTH = 64
PLUGIN_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRERELEASE_PART = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_PART = r"[0-9A-Za-z-]+"
SEMVER_PATTERN = re.compile(
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-{_PRERELEASE_PART}(?:\.{_PRERELEASE_PART})*)?"
    rf"(?:\+{_BUILD_PART}(?:\.{_BUILD_PART})*)?"
)


class SecurityError(RuntimeFailure):
    """A value was refused because accepting it could break isolation."""

    code = "security"


class PathTraversalError(SecurityError):
    """A path is absolute, malformed, or resolves outside the folder it must stay in."""

    code = "path_traversal"


class InputValidationError(SecurityError):
    """An identifier or other input does not have the required form."""

    code = "input_validation"


# Namespaces that are not a plugin's (see namespaces.py): a plugin with one of these ids
# would own them, and a message it sends would look like the supervisor's or the host's.
RESERVED_PLUGIN_IDS = {
    "system": "event:system:* is the supervisor's",
    "core": "request:core:* is the host application's",
    "client": "it is the source of what the host application sends",
}


def plugin_id_problem(value: object) -> str | None:
    """Why ``value`` is not a valid plugin id, or None when it is (for precise messages)."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_PLUGIN_ID_LENGTH:
        return f"is longer than {MAX_PLUGIN_ID_LENGTH} characters"
    if value in RESERVED_PLUGIN_IDS:
        return f"{value!r} is reserved: {RESERVED_PLUGIN_IDS[value]}"
    if PLUGIN_ID_PATTERN.fullmatch(value):
        return None
    if not PLUGIN_ID_PATTERN.fullmatch(value[0]):
        return f"{value!r} must start with a lowercase letter or a digit"
    return f"{value!r} may contain only lowercase letters, digits, '_' and '-'"


def is_valid_plugin_id(value: object) -> bool:
    """True when ``value`` is a plugin id: ``[a-z0-9][a-z0-9_-]{0,63}``, not reserved."""
    return plugin_id_problem(value) is None


def sanitize_plugin_id(plugin_id: str) -> str:
    """Return ``plugin_id`` unchanged when valid; refuse it otherwise.

    1.0 rewrote bad ids (``"My Plugin"`` became ``"My_Plugin"``), so two different
    plugins could end up with one id. 2.0 never rewrites.
    """
    problem = plugin_id_problem(plugin_id)
    if problem is not None:
        raise InputValidationError(f"invalid plugin id: {problem}", value=repr(plugin_id))
    return plugin_id


def is_semver(value: object) -> bool:
    """True for a full SemVer 2.0.0 version (``1.2.3``, ``1.0.0-rc.1+build.5``)."""
    return isinstance(value, str) and SEMVER_PATTERN.fullmatch(value) is not None


def validate_plugin_path(plugin_dir: Path, file_path: str) -> Path:
    """Resolve ``file_path`` inside ``plugin_dir``; refuse anything that leaves it.

    Both paths are resolved with symlinks followed, so ``..`` and a symlink pointing
    outside the folder are both caught. Returns the resolved path.
    """
    _check_text(file_path)
    if PurePath(file_path).is_absolute():
        raise PathTraversalError(f"absolute path not allowed: {file_path!r}", path=file_path)
    root = _resolve(Path(plugin_dir))
    resolved = _resolve(root / file_path)
    if not resolved.is_relative_to(root):
        raise PathTraversalError(
            f"path {file_path!r} resolves to {str(resolved)!r}, outside {str(root)!r}",
            path=file_path,
        )
    return resolved


def validate_path(path: str | Path, base_paths: Sequence[Path] | None = None) -> Path:
    """Resolve ``path`` and require it to lie inside one of ``base_paths`` (default: cwd).

    A relative path is taken relative to the first base path, as in 1.0. An empty
    ``base_paths`` allows nothing.
    """
    _check_text(path)
    bases = [Path.cwd()] if base_paths is None else list(base_paths)
    if not bases:
        raise PathTraversalError("no base path allowed", path=str(path))
    roots = [_resolve(Path(base)) for base in bases]
    resolved = _resolve(roots[0] / path)
    if not any(resolved.is_relative_to(root) for root in roots):
        raise PathTraversalError(
            f"path {str(path)!r} resolves to {str(resolved)!r}, outside the allowed folders",
            path=str(path),
        )
    return resolved


def _check_text(path: object) -> None:
    if not isinstance(path, str | os.PathLike):
        raise PathTraversalError(f"path must be a string, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise PathTraversalError(f"path must be a string, got {type(text).__name__}")
    if not text:
        raise PathTraversalError("path must not be empty")
    if "\x00" in text:
        raise PathTraversalError("path contains a NUL byte", path=repr(text))


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop on 3.11
        raise PathTraversalError(f"cannot resolve path {str(path)!r}: {exc}") from exc
