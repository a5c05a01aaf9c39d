"""Where a plugin's file sits in a Python package, so that it is imported as Python would
import it: its relative imports work, and its package's ``__init__`` runs first, once.

Spec-Kit's generator lays a plugin out as ``src/NAME_plugin/{__init__,plugin}.py`` with
``"file": "src/NAME_plugin/plugin.py"``; loaded as a standalone module, ``from . import x``
in it fails. A folder is a package when it holds ``__init__.py``. The package that counts
is the topmost one around the file that is still inside the plugin's folder (never above
it: that is not the plugin's, and Landlock would not let the worker read it). The loaders
import it under a private top-level name, not the folder's own, which may be an installed
package's (the generator's ``pyproject.toml`` makes ``NAME_plugin`` installable) or a
module the worker host has already imported.

Pure: whether a folder is a package is asked of the caller; paths are taken as given
(the caller resolves them).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

INIT = "__init__.py"


@dataclass(frozen=True)
class PackagePlace:
    """The topmost package folder, and the file's module path below it.

    ``parts`` is ``("plugin",)`` for ``TOP/plugin.py``, ``("sub", "plugin")`` for
    ``TOP/sub/plugin.py``, and ``()`` when the file is ``TOP/__init__.py`` itself.
    """

    top: Path
    parts: tuple[str, ...]

    def module_name(self, top_name: str) -> str:
        """The file's full module name when the top package is imported as ``top_name``."""
        return ".".join((top_name, *self.parts))


def is_module_name(name: str) -> bool:
    """True for a name an import statement can use (an identifier, not a keyword)."""
    return name.isidentifier() and not keyword.iskeyword(name)


def package_place(file: Path, root: Path, is_package: Callable[[Path], bool]
                  ) -> PackagePlace | None:
    """Where ``file`` (inside the plugin folder ``root``) sits in a package, or None when it
    is a module on its own: its folder holds no ``__init__.py``, or its name cannot be
    imported (``my-plugin.py``). A folder whose name cannot be imported ends the climb:
    it is the top package (whose own name is never used)."""
    folder = file.parent
    if not _inside(folder, root) or not is_package(folder):
        return None
    if file.name == INIT:
        parts: list[str] = []
    elif file.suffix == ".py" and is_module_name(file.stem):
        parts = [file.stem]
    else:
        return None
    while folder != root and is_module_name(folder.name) and is_package(folder.parent):
        parts.insert(0, folder.name)
        folder = folder.parent
    return PackagePlace(folder, tuple(parts))


def _inside(folder: Path, root: Path) -> bool:
    return folder == root or root in folder.parents
