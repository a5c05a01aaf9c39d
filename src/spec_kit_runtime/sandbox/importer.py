"""The plugin's ``__import__``: allowed modules only, each handed out as a read-only view.

A view has no private names and no module-valued attributes unless that module is allowed
(closes ``from pathlib import os`` and ``enum.bltns``), and no monkeypatching of shared
modules; what it hands out goes through ``replacements.exposed``.
"""

from __future__ import annotations

import builtins
import logging
import types
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from spec_kit_runtime.errors import SandboxImportError

from .replacements import exposed
from .rules import ALLOWED_MODULES, GADGETS, is_blocked_module, module_prefixes

if TYPE_CHECKING:
    from .packages import SandboxedPackage

logger = logging.getLogger(__name__)


class RestrictedImporter:
    """The plugin's ``__import__``: allowed modules only, each seen through a read-only view."""

    def __init__(self, extra_allowed: Iterable[str] = ()) -> None:
        self.allowed = ALLOWED_MODULES | {m for m in extra_allowed if not is_blocked_module(m)}
        self._views: dict[str, types.ModuleType] = {}
        self.packages: dict[str, SandboxedPackage] = {}  # plugins' packages by private name

    def is_allowed(self, name: str) -> bool:
        """True when ``name`` may be imported (and is not blocked)."""
        prefixes = list(module_prefixes(name))
        return not is_blocked_module(name) and any(p in self.allowed for p in prefixes)

    def __call__(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        if level:
            caller = (globals or {}).get("__name__")
            package = self.packages.get(str(caller).partition(".")[0])
            if package is None:
                raise SandboxImportError("relative imports work only in a plugin whose file "
                                         "is in a package (a folder with __init__.py)")
            return package.import_relative(name, globals, fromlist, level)
        if not self.is_allowed(name):
            logger.warning("sandbox refused import of %r", name)
            why = "blocked" if is_blocked_module(name) else "not allowed"
            raise SandboxImportError(f"import of '{name}' is {why} in the sandbox", module=name)
        names = tuple(fromlist or ())
        module = builtins.__import__(name, None, None, names, 0)
        for item in names:
            self._check_from(module, item)
        return self.view(module)

    def _check_from(self, module: types.ModuleType, item: str) -> None:
        if item == "*" or item.startswith("_"):
            raise SandboxImportError(f"'from {module.__name__} import {item}' is not allowed")
        try:
            value = exposed(module, item)
        except AttributeError as exc:
            if hasattr(module, item):  # hidden: say so
                raise SandboxImportError(f"'from {module.__name__} import {item}': "
                                         f"{exc}") from None
            # Missing: fail here, never through Python's sys.modules fallback.
            raise ImportError(f"cannot import name {item!r} from {module.__name__!r}"
                              ) from None
        if isinstance(value, types.ModuleType) and not self.is_allowed(value.__name__):
            raise SandboxImportError(
                f"'from {module.__name__} import {item}': '{item}' is the module "
                f"'{value.__name__}', which is not allowed in the sandbox"
            )

    def view(self, module: types.ModuleType) -> types.ModuleType:
        """The read-only public face of ``module`` handed to plugin code (one per module)."""
        found = self._views.get(module.__name__)
        if found is None:
            found = self._views[module.__name__] = _make_view(module, self._public_attribute)
        return found

    def _public_attribute(self, module: types.ModuleType, name: str) -> Any:
        if name in ("__name__", "__doc__"):
            return getattr(module, name)
        if name.startswith("_") or name in GADGETS:
            raise AttributeError(f"'{module.__name__}.{name}' is not available in the sandbox")
        value = exposed(module, name)
        if isinstance(value, types.ModuleType):
            if not self.is_allowed(value.__name__):
                raise AttributeError(
                    f"'{module.__name__}.{name}' is the module '{value.__name__}', "
                    "which is not allowed in the sandbox"
                )
            return self.view(value)
        return value


def _make_view(
    module: types.ModuleType, lookup: Callable[[types.ModuleType, str], Any]
) -> types.ModuleType:
    """A module object whose every attribute read goes through ``lookup``; writes refused.

    The real module lives only in this closure, not in an attribute a plugin could read.
    """

    class ModuleView(types.ModuleType):
        def __getattribute__(self, name: str) -> Any:
            return lookup(module, name)

        def __setattr__(self, name: str, value: Any) -> None:
            raise AttributeError(f"sandboxed code may not modify module '{module.__name__}'")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"sandboxed code may not modify module '{module.__name__}'")

        def __dir__(self) -> list[str]:
            return [n for n in dir(module) if not n.startswith("_")]

        def __repr__(self) -> str:
            return f"<sandboxed module {module.__name__!r}>"

    return ModuleView(module.__name__, module.__doc__)
