"""``PluginSandbox``: loads a plugin marked ``"sandbox": true`` through the sandbox's layers.

**This is not a security boundary.** CPython cannot confine code running in its own
interpreter; new escapes are found regularly. The boundary in 2.0 is the worker process
and the operating system around it (no_new_privs, Landlock, network namespace). This
layer (defence in depth) only raises the cost of the well-known tricks and turns them into
clear load-time errors. Its layers, each in its own module:

* source validation by AST (``source_check``), before any of the source runs;
* a restricted ``__import__`` that hands out read-only *views* of allowed modules
  (``importer``);
* restricted builtins (no ``eval``/``exec``/``open``/``getattr``/...), here; the names all
  three refuse are tables in ``rules``;
* a few standard-library callables that reach attributes by a name built at run time, or
  compile code, are replaced or hidden in the views (``replacements``). The red team's PoCs
  of those escapes live in tests/sandbox_escapes/.

Not confined here: file access through ``pathlib`` or ``logging`` handlers (the worker's
Landlock ruleset and ``IFileSystemService`` own that), CPU and memory (worker limits).
"""

from __future__ import annotations

import builtins
import functools
import itertools
import logging
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import LifecycleError, SandboxViolation
from spec_kit_runtime.plugins.package import INIT, package_place

from .importer import RestrictedImporter
from .rules import FORBIDDEN_BUILTINS
from .source_check import validate_source

_MAX_SOURCE_BYTES = 4 * 1024 * 1024
_module_numbers = itertools.count(1)


class PluginSandbox:
    """Loads plugin source with validated code, restricted imports and restricted builtins."""

    def __init__(
        self,
        allowed_imports: list[str] | None = None,
        restricted_builtins: list[str] | None = None,
    ) -> None:
        self.importer = RestrictedImporter(allowed_imports or ())
        self.forbidden_builtins = FORBIDDEN_BUILTINS | set(restricted_builtins or ())

    def builtins_namespace(self) -> dict[str, Any]:
        """The ``__builtins__`` a plugin module sees."""
        namespace = {
            name: value
            for name, value in vars(builtins).items()
            if name not in self.forbidden_builtins
        }
        namespace["__import__"] = self.importer
        return namespace

    def load_class(self, path: Path, entry_point: str, root: Path | None = None) -> type:
        """Validate and run the plugin file at ``path``; return its class ``entry_point``.

        ``root`` is the plugin's folder (default: the file's own). A file in a package
        inside it (``plugins.package``) is run as a module of that package, whose
        ``__init__`` runs first and whose modules its relative imports reach, each
        checked and run as the file is (``sandbox.packages``). Modules are registered in
        ``sys.modules`` under private names so that dataclasses and
        ``typing.get_type_hints`` in plugin code can find them.
        """
        from .packages import SandboxedPackage  # it builds on this module

        place = package_place(path.resolve(), (root or path.parent).resolve(),
                              lambda folder: (folder / INIT).is_file())
        if place is None:
            source = _read_source(path)
            validate_source(source, str(path))
            stem = "".join(c if c.isalnum() else "_" for c in path.stem)
            module = self.new_module(f"_spec_kit_sandboxed_{next(_module_numbers)}_{stem}", path)
            sys.modules[module.__name__] = module
            try:
                exec(compile(source, str(path), "exec"), module.__dict__)
            except BaseException:
                sys.modules.pop(module.__name__, None)
                raise
            discard: Callable[[], object] = functools.partial(
                sys.modules.pop, module.__name__, None)
        else:
            package = SandboxedPackage(self, place, f"_spec_kit_sandboxed_{next(_module_numbers)}")
            self.importer.packages[package.top_name] = package
            try:
                module = package.load()
            except BaseException:
                del self.importer.packages[package.top_name]
                raise
            discard = package.discard
        found = module.__dict__.get(entry_point)
        if not isinstance(found, type):
            discard()
            what = "not found" if found is None else f"is a {type(found).__name__}, not a class"
            raise LifecycleError(
                f"{path}: entry point '{entry_point}' {what}", file=str(path), phase="load"
            )
        return found

    def new_module(self, name: str, path: Path) -> types.ModuleType:
        """An empty module ``name`` for the source at ``path``, with the sandbox's builtins."""
        module = types.ModuleType(name)
        module.__dict__.update(
            __builtins__=self.builtins_namespace(),
            __file__=str(path),
            Path=Path,  # 1.0 pre-imported these two
            logging=self.importer.view(logging),
        )
        return module

    def run_module(self, module: types.ModuleType, path: Path, *,
                   relative_imports: bool = False) -> None:
        """Check the source at ``path`` and run it in ``module``."""
        source = _read_source(path)
        validate_source(source, str(path), relative_imports=relative_imports)
        exec(compile(source, str(path), "exec"), module.__dict__)

    def load_plugin(self, plugin_info: Any, config: dict[str, Any] | None = None) -> Any:
        """1.0 API: load ``plugin_info``'s entry point, instantiate it and initialize it."""
        folder = Path(plugin_info.path)
        root = folder if folder.is_dir() else getattr(plugin_info, "root", None)
        plugin_class = self.load_class(_source_file(plugin_info), plugin_info.entry_point, root)
        plugin = plugin_class()
        plugin.initialize(config or {})
        return plugin


def _source_file(plugin_info: Any) -> Path:
    """The plugin's source file: ``path`` itself, or ``path / file`` when path is a folder."""
    path = Path(plugin_info.path)
    if path.is_dir():
        return path / str(getattr(plugin_info, "file", None) or "plugin.py")
    return path


def _read_source(path: Path) -> str:
    size = path.stat().st_size
    if size > _MAX_SOURCE_BYTES:
        raise SandboxViolation(
            f"{path}: source is {size} bytes, more than the sandbox's {_MAX_SOURCE_BYTES}",
            file=str(path),
        )
    return path.read_text(encoding="utf-8")
