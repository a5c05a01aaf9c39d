"""Plugins made by Spec-Kit's own generator (``specify-cli-extended==1.0.0``, a test extra).

The generator is the source of truth for what Spec-Kit writes; the tests run it rather
than copy its output, so a manifest or layout it writes that we refuse shows up here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from specify_cli_extended.plugin_generator import PluginGenerator

# What Spec-Kit may add to a generated manifest besides what the generator writes.
COMMANDS = [{"name": "greeter:hello", "description": "Say hello"},
            {"name": "greeter:status", "description": "Show plugin status"}]
HELPERS = '"""Beside plugin.py: reached by a relative import."""\n\n' \
          'def greeting(name):\n    return f"Hello, {name}!"\n'


def generate(where: Path, name: str = "greeter", **manifest_changes: Any) -> Path:
    """``specify-extended plugin new NAME --path WHERE``; returns the plugin folder.

    ``manifest_changes`` are written over the generated manifest's fields.
    """
    folder = PluginGenerator().create_plugin(name, where)
    if manifest_changes:
        path = folder / "plugin.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **manifest_changes}))
    return folder


def add_relative_import(folder: Path, name: str = "greeter") -> Path:
    """Make the generated ``plugin.py`` answer ``NAME:hello`` through ``from .helpers import``
    (a ``helpers.py`` beside it); returns the package folder."""
    package = folder / "src" / f"{name.replace('-', '_')}_plugin"
    (package / "helpers.py").write_text(HELPERS)
    plugin = package / "plugin.py"
    source = plugin.read_text()
    old = 'return {\n            "success": True,\n            "message": f"Hello, {name}!",'
    assert old in source, "the generator's hello handler changed"
    source = source.replace(old, 'return {\n            "success": True,\n'
                                 '            "message": greeting(name),')
    source = source.replace("\nlogger = ", "\nfrom .helpers import greeting\n\nlogger = ", 1)
    plugin.write_text(source)
    return package
