"""Relative imports for a sandboxed plugin whose file sits in a package: the plugin's own
modules, each checked and run by the same sandbox as the file itself.

Why this widens nothing: a module reached this way is a ``.py`` file inside the plugin's
topmost package folder (``plugins.package``; a symbolic link leading out is refused),
its source passes ``validate_source`` like the plugin's file, and it runs with the same
restricted builtins and importer. Its code could have been written in the plugin's file.
The module objects handed to plugin code are plain modules holding that code's own
globals; what they hold beyond those (``__builtins__``, ``__dict__``) is reachable only
through names the source checks refuse. Python's semantics are kept where they matter:
the package's ``__init__`` runs first, a module runs once however often it is imported,
a module is visible while it runs (circular imports), a submodule becomes an attribute
of its package, and a failed import leaves nothing behind.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spec_kit_runtime.errors import SandboxImportError
from spec_kit_runtime.plugins.package import INIT, PackagePlace, is_module_name

if TYPE_CHECKING:
    from .plugin_sandbox import PluginSandbox


class SandboxedPackage:
    """One plugin's package, imported under the private top-level name ``top_name``."""

    def __init__(self, sandbox: PluginSandbox, place: PackagePlace, top_name: str) -> None:
        self.sandbox, self.place, self.top_name = sandbox, place, top_name
        self._top = place.top.resolve()
        # full name -> (module, its folder when it is a package)
        self.modules: dict[str, tuple[types.ModuleType, Path | None]] = {}

    def load(self) -> types.ModuleType:
        """Import the top package (its ``__init__``), then the plugin's file through it."""
        try:
            self._import(())
            return self._import(self.place.parts)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Forget every module of the package (the load failed)."""
        for name in self.modules:
            sys.modules.pop(name, None)
        self.modules.clear()

    def import_relative(self, name: str, globals: Mapping[str, Any] | None,
                        fromlist: Iterable[str] | None, level: int) -> types.ModuleType:
        """``from .name import x`` (``level`` dots) in the module whose globals these are."""
        parts = self._base(globals, level)
        if name:
            parts = (*parts, *name.split("."))
        module = self._import(parts)
        folder = self.modules[".".join((self.top_name, *parts))][1]
        for item in fromlist or ():
            if item == "*":
                raise SandboxImportError("'from . import *' is not allowed in the sandbox")
            if folder is not None and item not in module.__dict__ and self._find(folder, item):
                self._import((*parts, item))  # a submodule, as Python imports it
            if item not in module.__dict__:
                # Else Python looks ``{module.__name__}.{item}`` up in sys.modules, and a
                # plugin may rename its own module: that handed out real modules.
                raise ImportError(f"cannot import name {item!r} from the plugin's module "
                                  f"{'.'.join(parts) or 'package'!r}")
        return module

    def _base(self, globals: Mapping[str, Any] | None, level: int) -> tuple[str, ...]:
        """The package that ``level`` dots name, seen from the importing module."""
        name = (globals or {}).get("__name__")
        entry = self.modules.get(name) if isinstance(name, str) else None
        if entry is None or entry[0].__dict__ is not globals:
            raise SandboxImportError("relative import from a module the sandbox did not load")
        parts = tuple(str(name).split("."))[1:]
        if entry[1] is None:  # a module: its package is its parent
            parts = parts[:-1]
        if level - 1 > len(parts):
            raise SandboxImportError("relative import beyond the plugin's top-level package")
        return parts[:len(parts) - (level - 1)]

    def _import(self, parts: tuple[str, ...]) -> types.ModuleType:
        """The module at ``parts`` below the top package, importing it and its packages."""
        folder: Path | None = self.place.top
        module = self._load((), self._inside(self.place.top / INIT), folder)
        for depth, part in enumerate(parts, start=1):
            if folder is None:
                raise ModuleNotFoundError(
                    f"No module named '{'.'.join(parts[:depth])}' in the plugin's package: "
                    f"'{'.'.join(parts[:depth - 1])}' is not a package")
            found = self._find(folder, part)
            if found is None:
                raise ModuleNotFoundError(
                    f"No module named '{'.'.join(parts[:depth])}' in the plugin's package")
            file, is_package = found
            folder = file.parent if is_package else None
            module = self._load(parts[:depth], file, folder)
        return module

    def _find(self, folder: Path, part: str) -> tuple[Path, bool] | None:
        """``folder/part/__init__.py`` (first, as Python) or ``folder/part.py``, if there."""
        if not is_module_name(part) or part.startswith("__"):
            raise SandboxImportError(f"'{part}' cannot be imported from the plugin's package")
        for file, is_package in ((folder / part / INIT, True), (folder / f"{part}.py", False)):
            if file.is_file():
                return self._inside(file), is_package
        return None

    def _inside(self, file: Path) -> Path:
        """``file``, refused when it leads (by a symbolic link) outside the package."""
        if self._top not in file.resolve().parents:
            raise SandboxImportError(f"{file} leads outside the plugin's package "
                                     f"({self.place.top})")
        return file

    def _load(self, parts: tuple[str, ...], file: Path, folder: Path | None
              ) -> types.ModuleType:
        """The module ``parts``, run now unless it already was (or is running)."""
        name = ".".join((self.top_name, *parts))
        known = self.modules.get(name)
        if known is not None:
            return known[0]
        module = self.sandbox.new_module(name, file)
        self.modules[name] = (module, folder)
        sys.modules[name] = module
        try:
            self.sandbox.run_module(module, file, relative_imports=True)
        except BaseException:
            self.modules.pop(name, None)
            sys.modules.pop(name, None)
            raise
        if parts:
            parent = self.modules[".".join((self.top_name, *parts[:-1]))][0]
            parent.__dict__[parts[-1]] = module
        return module
