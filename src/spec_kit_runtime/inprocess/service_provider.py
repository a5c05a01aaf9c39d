"""Dependency injection for plugin services (the 1.0 ``ServiceProvider`` API).

A service is found by its interface (usually a class from ``spec_kit_contracts``). Order
of resolution: the asking plugin's own services, then global singletons, then factories,
then the one plugin that provides it. The last step is what lets the 1.0 README's
``register_service("plugin-id", I, impl)`` followed by ``get_service(I)`` work; when
several plugins provide the interface the caller must say which (no silent pick).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from spec_kit_contracts import ServiceContractError

logger = logging.getLogger(__name__)

Factory = Callable[[], Any]


def _name(interface: Any) -> str:
    return getattr(interface, "__qualname__", None) or repr(interface)


class ServiceProvider:
    """Thread-safe registry of singletons, factories and per-plugin services."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._singletons: dict[Any, Any] = {}
        self._factories: dict[Any, Factory] = {}
        self._by_plugin: dict[str, dict[Any, Any]] = {}

    def register_singleton(self, interface: type, implementation: Any) -> None:
        """Serve ``implementation`` to everyone who asks for ``interface``."""
        with self._lock:
            self._singletons[interface] = implementation
        logger.debug("registered singleton %s", _name(interface))

    def register_factory(self, interface: type, factory: Factory) -> None:
        """Build a fresh ``interface`` with ``factory()`` on every resolve."""
        if not callable(factory):
            raise TypeError(f"factory for {_name(interface)} must be callable")
        with self._lock:
            self._factories[interface] = factory
        logger.debug("registered factory %s", _name(interface))

    def register_service(self, plugin_id: str, interface: type, implementation: Any) -> None:
        """Record that ``plugin_id`` provides ``interface``; dropped with the plugin."""
        with self._lock:
            self._by_plugin.setdefault(plugin_id, {})[interface] = implementation
        logger.debug("registered %s for plugin %s", _name(interface), plugin_id)

    def resolve(self, interface: type, plugin_id: str | None = None) -> Any:
        """The implementation of ``interface``; ServiceContractError when there is none."""
        with self._lock:
            own = self._by_plugin.get(plugin_id, {}) if plugin_id else {}
            if interface in own:
                return own[interface]
            if interface in self._singletons:
                return self._singletons[interface]
            factory = self._factories.get(interface)
            providers = self._providers(interface)
        if factory is not None:
            return factory()  # outside the lock: a factory may resolve other services
        if len(providers) == 1:
            return self._by_plugin[providers[0]][interface]
        raise ServiceContractError(self._unresolvable(interface, plugin_id, providers))

    def get_service(self, interface: type, plugin_id: str | None = None) -> Any:
        """Alias of ``resolve`` (the name the 1.0 README uses)."""
        return self.resolve(interface, plugin_id)

    def unregister_plugin_services(self, plugin_id: str) -> None:
        """Forget every service ``plugin_id`` registered."""
        with self._lock:
            if self._by_plugin.pop(plugin_id, None) is not None:
                logger.debug("unregistered services of plugin %s", plugin_id)

    def get_available_services(self, plugin_id: str | None = None) -> list[type]:
        """Interfaces that ``resolve(interface, plugin_id)`` would answer."""
        with self._lock:
            found = dict.fromkeys([*self._singletons, *self._factories])
            if plugin_id:
                found.update(dict.fromkeys(self._by_plugin.get(plugin_id, {})))
            for services in self._by_plugin.values():
                found.update(dict.fromkeys(i for i in services if len(self._providers(i)) == 1))
            return list(found)

    def _providers(self, interface: Any) -> list[str]:
        return sorted(pid for pid, services in self._by_plugin.items() if interface in services)

    @staticmethod
    def _unresolvable(interface: Any, plugin_id: str | None, providers: list[str]) -> str:
        asking = f" for plugin '{plugin_id}'" if plugin_id else ""
        if providers:
            return (
                f"cannot resolve service {_name(interface)}{asking}: provided by several "
                f"plugins ({', '.join(providers)}); pass plugin_id to choose"
            )
        return (
            f"cannot resolve service {_name(interface)}{asking}: no singleton, factory "
            "or plugin provides it"
        )
