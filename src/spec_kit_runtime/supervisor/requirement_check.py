"""A plugin whose package requirements are not installed is not started.

The check runs in the supervisor because it shares the workers' environment: the fork
server is its child and a spawned worker runs the same interpreter, so the distributions
``importlib.metadata`` finds here are what the plugin will import. It is a step of the
load and start operations (before any worker is spawned), not of discovery, which lists
every plugin, nor of the automatic restarts after a crash, which stay cheap: the plugin
passed it when it was loaded. What counts as met is decided in ``requirements`` (pure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spec_kit_runtime.errors import RequirementError
from spec_kit_runtime.plugins.requirements import InstalledLookup, unmet

if TYPE_CHECKING:
    from spec_kit_runtime.plugins.plugin_info import PluginInfo

    from .operation import Operation



def installed_version(name: str) -> str | None:
    """The version of the installed distribution ``name`` (first on ``sys.path``), or None.
    ``importlib.metadata`` is imported here, by the first plugin with requirements: at the
    top it cost every supervisor's start 15 ms."""
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def require_installed(info: PluginInfo, phase: str = "load",
                      installed: InstalledLookup = installed_version) -> None:
    """Raise RequirementError naming every requirement of ``info`` not met here."""
    missing = [found.describe() for requirement in info.requirements
               if (found := unmet(requirement, installed)) is not None]
    if missing:
        what = "requirement" if len(missing) == 1 else "requirements"
        raise RequirementError(
            f"plugin '{info.id}' cannot be started: {what} not met: {'; '.join(missing)}",
            plugin=info.id, phase=phase, unmet=missing)


def check(op: Operation) -> None:
    """The lifecycle step: refuse the operation, or go on."""
    require_installed(op.slot.info, op.name)
    op.proceed()
