"""``container.plugins``: the loaded plugins, each read like 1.0's plugin object.

In 1.0 ``container.plugins`` was a dict of the plugin objects themselves, and Spec-Kit's
CLI reads ``.metadata``, ``.status`` and ``.get_config_schema()`` from them. Here each
plugin lives in its worker, so a ``PluginHandle`` holds what the worker reported at load
(metadata and schema never change while a worker runs) and asks the supervisor only for
what does change: the status. The mapping itself is live: each operation on it asks the
supervisor once which plugins are loaded now, so a crash, a restart or an unload by
anyone shows at the next read.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

from spec_kit_contracts import IPluginMetadata, PluginStatus

from .errors import LifecycleError
from .plugin_facts import PluginFacts, facts_from

Control = Callable[..., Any]
"""``control(op, **args)``: a control operation on the supervisor, returning its answer."""

# The supervisor's states that are not PluginStatus values, as the nearest 1.0 status.
_NEAREST = {"restarting": PluginStatus.LOADING, "stopped": PluginStatus.DISABLED,
            "failed": PluginStatus.ERROR}


def status_of(state: object) -> PluginStatus:
    """The ``PluginStatus`` a supervisor state reads as (unknown states: ERROR)."""
    if isinstance(state, str):
        if state in _NEAREST:
            return _NEAREST[state]
        try:
            return PluginStatus(state)
        except ValueError:
            pass
    return PluginStatus.ERROR


class PluginHandle:
    """A loaded plugin: ``plugin_id``, ``metadata``, ``status``, ``get_config_schema()``."""

    def __init__(self, plugin_id: str, facts: PluginFacts, control: Control) -> None:
        self.plugin_id = plugin_id
        self._facts = facts
        self._control = control

    @property
    def metadata(self) -> IPluginMetadata:
        """The metadata the plugin's own code returned (``_create_metadata()``)."""
        return self._facts.metadata

    @property
    def status(self) -> PluginStatus:
        """The plugin's status now (one question to the supervisor): ACTIVE when active;
        LOADING while it restarts, DISABLED once stopped, ERROR after a crash or a
        failure, UNLOADED once unloaded."""
        states = self._control("plugins")
        entry = states.get(self.plugin_id) if isinstance(states, dict) else None
        return status_of(entry["state"]) if entry else PluginStatus.UNLOADED

    def get_config_schema(self) -> dict[str, Any]:
        """The plugin's own ``get_config_schema()`` answer, as given at load."""
        if self._facts.config_schema_error is not None:
            raise LifecycleError(f"plugin '{self.plugin_id}': get_config_schema() raised "
                                 f"{self._facts.config_schema_error}", plugin=self.plugin_id)
        return dict(self._facts.config_schema or {})

    def __repr__(self) -> str:
        return f"<PluginHandle {self.plugin_id} {self.metadata.version}>"


class LoadedPlugins(Mapping[str, PluginHandle]):
    """Plugin id → ``PluginHandle`` for every plugin the supervisor has loaded now."""

    def __init__(self, control: Control) -> None:
        self._control = control
        self._handles: dict[str, PluginHandle] = {}

    def remember(self, plugin_id: str, facts: object) -> None:
        """Keep the facts a load answer carried, so reading them costs no question."""
        known = facts_from(facts)
        if known is not None:
            self._handles[plugin_id] = PluginHandle(plugin_id, known, self._control)

    def forget(self, plugin_id: str) -> None:
        """Drop a plugin's handle (it was unloaded)."""
        self._handles.pop(plugin_id, None)

    def _now(self) -> dict[str, PluginHandle]:
        """The loaded plugins now: one question, and one more for facts not yet known (a
        plugin loaded by another client, or by ``spec-kit-runtime run``)."""
        states: dict[str, Any] = self._control("plugins")
        for gone in set(self._handles) - set(states):
            del self._handles[gone]
        unknown = [plugin_id for plugin_id in states if plugin_id not in self._handles]
        if unknown:
            for plugin_id, entry in self._control("plugins", facts=unknown).items():
                if plugin_id in unknown:
                    self.remember(plugin_id, entry.get("facts"))
        return {plugin_id: self._handles[plugin_id] for plugin_id in states
                if plugin_id in self._handles}  # without facts: its load has not finished

    def __getitem__(self, plugin_id: str) -> PluginHandle:
        handles = self._now()
        if plugin_id not in handles:
            raise KeyError(plugin_id)
        return handles[plugin_id]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._now()))

    def __len__(self) -> int:
        return len(self._now())

    def __contains__(self, plugin_id: object) -> bool:
        return plugin_id in self._now()

    def keys(self) -> KeysView[str]:
        return self._now().keys()

    def items(self) -> ItemsView[str, PluginHandle]:
        return self._now().items()

    def values(self) -> ValuesView[PluginHandle]:
        return self._now().values()
