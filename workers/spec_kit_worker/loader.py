"""Load the plugin's entry-point class, directly or through the sandbox."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import LifecycleError
from spec_kit_runtime.sandbox import PluginSandbox


def load_plugin_class(plugin_id: str, file: Path, entry_point: str, sandbox: bool) -> type[Any]:
    """The plugin's class. Its module is named after the plugin so tracebacks say whose."""
    if sandbox:
        return PluginSandbox().load_class(file, entry_point)
    module_name = f"spec_kit_plugin_{plugin_id.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise LifecycleError(f"cannot import {file}", plugin=plugin_id, phase="load")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(file.parent))  # sibling modules of a trusted plugin
    spec.loader.exec_module(module)
    cls = getattr(module, entry_point, None)
    if not isinstance(cls, type):
        raise LifecycleError(
            f"{file} has no class '{entry_point}' (the manifest's entry_point)",
            plugin=plugin_id, phase="load",
        )
    return cls
