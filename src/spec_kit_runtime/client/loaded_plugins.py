"""``container.plugins``: the loaded plugins, each read like 1.0's plugin object.

In 1.0 ``container.plugins`` was a dict of the plugin objects themselves, and Spec-Kit's
CLI reads ``.metadata``, ``.status`` and ``.get_config_schema()`` from them. Here each
plugin lives in its worker, so a ``PluginHandle`` holds what the worker reported when it
was loaded (``plugins.facts``) and asks the supervisor only for what changes: the status.
The mapping is live: each operation on it asks the supervisor which plugins are loaded
now, with the generation of each one's facts; facts this process lacks, or holds from an
earlier worker, are fetched in a second question. So a crash, a restart or an unload by
anyone shows at the next read. A plugin is listed once a load of it has succeeded, until
it is unloaded, as 1.0 listed it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import TYPE_CHECKING, Any

from spec_kit_contracts import IPluginMetadata, PluginStatus

from spec_kit_runtime.errors import LifecycleError
from spec_kit_runtime.plugins.facts import PluginFacts, facts_from
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.protocol import ControlOp

if TYPE_CHECKING:
    from spec_kit_runtime.wire.status import PluginEntry

Control = Callable[..., Any]
"""``control(op, **args)``: a control operation on the supervisor, returning its answer."""

# The supervisor's states that are not PluginStatus values, as the nearest 1.0 status.
_NEAREST: dict[str, PluginStatus] = {
    PluginState.RESTARTING: PluginStatus.LOADING,
    PluginState.STOPPED: PluginStatus.DISABLED,
    PluginState.FAILED: PluginStatus.ERROR,
}


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

    def __init__(self, plugin_id: str, facts: PluginFacts,
                 status: Callable[[str], PluginStatus | None]) -> None:
        self.plugin_id = plugin_id
        self._facts = facts
        self._status = status

    @property
    def metadata(self) -> IPluginMetadata:
        """The metadata the plugin's own code returned (``_create_metadata()``)."""
        return self._facts.metadata

    @property
    def status(self) -> PluginStatus:
        """The plugin's status now (one question to the supervisor); UNLOADED once it is
        no longer loaded."""
        return self._status(self.plugin_id) or PluginStatus.UNLOADED

    def get_config_schema(self) -> dict[str, Any]:
        """The plugin's own ``get_config_schema()`` answer, as given at load."""
        if self._facts.config_schema_error is not None:
            raise LifecycleError(f"plugin '{self.plugin_id}': get_config_schema() gave no "
                                 f"schema: {self._facts.config_schema_error}",
                                 plugin=self.plugin_id)
        return dict(self._facts.config_schema or {})

    def __repr__(self) -> str:
        return f"<PluginHandle {self.plugin_id} {self.metadata.version}>"


class LoadedPlugins(Mapping[str, PluginHandle]):
    """Plugin id → ``PluginHandle`` for every plugin the supervisor has loaded now."""

    def __init__(self, control: Control, facts_per_question: int = 50) -> None:
        self._control = control
        self._chunk = max(1, facts_per_question)
        self._lock = threading.Lock()  # handlers on pool threads read it too
        self._handles: dict[str, tuple[int, PluginHandle]] = {}  # id → (generation, handle)

    def status(self, plugin_id: str) -> PluginStatus | None:
        """``plugin_id``'s status now (ERROR after a failed load); None when the supervisor
        does not know it."""
        entry = self._entries().get(plugin_id)
        return status_of(entry.state) if entry else None

    def remember(self, plugin_id: str, answer: Mapping[str, Any]) -> None:
        """Keep the facts a (re)start's answer carried, so reading them asks nothing."""
        facts, generation = answer.get("plugin"), answer.get("generation")
        if isinstance(facts, dict) and isinstance(generation, int):
            with self._lock:
                self._handles[plugin_id] = (generation, self._handle(plugin_id, facts))

    def forget(self, plugin_id: str) -> None:
        """Drop a plugin's handle (it was unloaded)."""
        with self._lock:
            self._handles.pop(plugin_id, None)

    def _entries(self, **args: Any) -> dict[str, PluginEntry]:
        """The ``plugins`` answer (``facts``: the ids whose facts it should carry)."""
        from spec_kit_runtime.wire.status import plugin_entries  # here: see its docs

        return plugin_entries(self._control(ControlOp.PLUGINS, **args))

    def _handle(self, plugin_id: str, facts: Mapping[str, Any]) -> PluginHandle:
        return PluginHandle(plugin_id, facts_from(facts), self.status)

    def _now(self) -> dict[str, PluginHandle]:
        """The loaded plugins now: one question, and more for facts not held yet."""
        states = {plugin_id: entry for plugin_id, entry in self._entries().items()
                  if entry.loaded}
        with self._lock:
            known = dict(self._handles)
        stale = [plugin_id for plugin_id, entry in states.items()
                 if known.get(plugin_id, (None,))[0] != entry.generation]
        for start in range(0, len(stale), self._chunk):
            answer = self._entries(facts=stale[start:start + self._chunk])
            for plugin_id in stale[start:start + self._chunk]:
                found = answer.get(plugin_id)
                if found is not None and found.facts is not None:
                    known[plugin_id] = (found.generation, self._handle(plugin_id, found.facts))
        current = {plugin_id: known[plugin_id] for plugin_id in states if plugin_id in known}
        with self._lock:
            self._handles = current
        return {plugin_id: handle for plugin_id, (_, handle) in current.items()}

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
