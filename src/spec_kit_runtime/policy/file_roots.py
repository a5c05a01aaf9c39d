"""A plugin's file system roots and which of them a path names (pure: no file system).

``locate`` is the first check of every file service call: NUL bytes, ``..`` anywhere,
absolute paths outside every root, overlong and overdeep paths are refused here, before
``host_services.filesystem`` walks anything. The configuration reads ``Root`` too
(``plugins.ID.filesystem``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spec_kit_runtime.errors import PathRefusedError

MAX_PATH_BYTES = 4096
MAX_DEPTH = 256  # components of a path


@dataclass(frozen=True)
class Root:
    """A folder a plugin may use: ``path`` absolute and free of symbolic links (resolved
    when configured), ``writable`` or read-only. ``owner`` (uid, gid): whom what the service
    makes there belongs to, for the plugin's data folder when its worker runs as another
    user (the worker must be able to use it too); None: the supervisor's user."""

    path: str
    writable: bool
    owner: tuple[int, int] | None = None

    def holds(self, real: str) -> bool:
        """Whether the real path ``real`` is the root or below it."""
        return real == self.path or real.startswith(self.path.rstrip("/") + "/")

    def below(self, absolute: str) -> tuple[str, ...] | None:
        """The components of ``absolute`` below this root, or None when it is elsewhere."""
        if not self.holds(absolute):
            return None
        return parts_of(absolute[len(self.path):])


def locate(roots: Sequence[Root], requested: str) -> tuple[Root, tuple[str, ...]]:
    """Which root ``requested`` is in and its components below it (pure: no file system).

    Relative paths belong to the first root; absolute ones to the deepest root holding
    them. Refused: NUL, ``..`` (even one that would stay inside), paths outside every
    root, overlong or overdeep paths.
    """
    if "\0" in requested:
        raise PathRefusedError("a path may not contain NUL", path=requested[:200])
    if len(requested.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise PathRefusedError(f"a path may be at most {MAX_PATH_BYTES} bytes")
    if requested.startswith("/"):
        holders = sorted((r for r in roots if r.below(requested) is not None),
                         key=lambda r: len(r.path), reverse=True)
        if not holders:
            raise PathRefusedError(f"'{requested}' is outside the plugin's file system roots",
                                   path=requested)
        root = holders[0]
        parts = root.below(requested) or ()
    else:
        root, parts = roots[0], parts_of(requested)
    if ".." in parts:
        raise PathRefusedError(f"'{requested}': '..' is not allowed in a path", path=requested)
    if len(parts) > MAX_DEPTH:
        raise PathRefusedError(f"'{requested}' is more than {MAX_DEPTH} folders deep")
    return root, parts


def parts_of(path: str) -> tuple[str, ...]:
    """The components of ``path``, without empty ones and ``.``."""
    return tuple(p for p in path.split("/") if p not in ("", "."))
