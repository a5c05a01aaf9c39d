"""Load the plugin's entry-point class, directly or through the sandbox.

A trusted plugin's file that sits in a package (``plugins.package``) is imported as a
submodule of that package, which is imported first under the private top-level name
``_spec_kit_plugin_ID``: its ``__init__`` runs as Python runs it, relative imports work,
and neither an installed package nor a module of the worker host can be taken for it.
A file on its own is imported alone, named after the plugin, with its folder on
``sys.path`` for its sibling modules; its compiled code is kept for the plugin's next
worker (``code_cache``), the return channel ``back`` carrying it to the fork server, and
may come from an earlier worker (``cached``, a sealed memfd's fd). Whichever way a plugin
loads, ``back`` and ``cached`` are closed before any of its code runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import socket
import sys
import types
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import LifecycleError
from spec_kit_runtime.plugins.package import INIT, PackagePlace, package_place
from spec_kit_runtime.sandbox.plugin_sandbox import PluginSandbox

from .code_cache import CachingLoader


def load_plugin_class(plugin_id: str, file: Path, entry_point: str, sandbox: bool,
                      root: Path | None = None, back: socket.socket | None = None,
                      cached: int | None = None) -> type[Any]:
    """The plugin's class from ``file`` in the plugin folder ``root`` (default: the file's
    own folder). Its module is named after the plugin so tracebacks say whose. ``back``,
    the worker's return channel to the fork server (or None), and ``cached``, the fd of
    the plugin's code compiled by an earlier worker (or None), are closed here."""
    memfd = None  # the fd as a file: closed once, however many times closed
    try:
        memfd = None if cached is None else io.FileIO(cached, "rb")
        root = (root or file.parent).resolve()
        if sandbox:
            _close(back, memfd)
            return PluginSandbox().load_class(file, entry_point, root=root)
        place = package_place(file.resolve(), root, lambda folder: (folder / INIT).is_file())
        if place is None:
            module = _import_alone(plugin_id, file, back, memfd)
        else:
            _close(back, memfd)
            module = _import_in_package(plugin_id, file, place)
    finally:
        _close(back, memfd)  # again, for a load that failed before any plugin code ran
    cls = getattr(module, entry_point, None)
    if not isinstance(cls, type):
        raise LifecycleError(
            f"{file} has no class '{entry_point}' (the manifest's entry_point)",
            plugin=plugin_id, phase="load",
        )
    return cls


def module_name(plugin_id: str) -> str:
    """The module name of a single-file plugin: after the plugin, so tracebacks say whose."""
    return f"spec_kit_plugin_{plugin_id.replace('-', '_')}"


def _import_alone(plugin_id: str, file: Path, back: socket.socket | None,
                  cached: io.FileIO | None) -> types.ModuleType:
    """Import the file as CPython would, but with its code cached (``CachingLoader``,
    which closes ``back`` and ``cached`` before the module runs)."""
    name = module_name(plugin_id)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None or spec.origin is None:
        raise LifecycleError(f"cannot import {file}", plugin=plugin_id, phase="load")
    spec.loader = CachingLoader(name, spec.origin, back, cached)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.parent))  # sibling modules of a trusted plugin
    spec.loader.exec_module(module)
    return module


def _import_in_package(plugin_id: str, file: Path, place: PackagePlace) -> types.ModuleType:
    """Import the top package under its private name, then the file's module through it
    (already imported if the package's ``__init__`` imported it: never twice)."""
    top_name = f"_spec_kit_plugin_{plugin_id.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(
        top_name, place.top / INIT, submodule_search_locations=[str(place.top)])
    if spec is None or spec.loader is None:
        raise LifecycleError(f"cannot import {place.top}", plugin=plugin_id, phase="load")
    package = importlib.util.module_from_spec(spec)
    sys.modules[top_name] = package
    spec.loader.exec_module(package)
    module = importlib.import_module(place.module_name(top_name))
    found = getattr(module, "__file__", None)
    if found is None or Path(found).resolve() != file.resolve():
        raise LifecycleError(
            f"{file} is not what '{place.module_name(top_name)}' imports ({found}): a "
            "package of the same name beside it comes first", plugin=plugin_id, phase="load")
    return module


def _close(back: socket.socket | None, cached: io.FileIO | None) -> None:
    """Close the return channel and the memfd (idempotent: once closed, each holds no fd)."""
    if back is not None:
        back.close()
    if cached is not None:
        cached.close()
