"""Starting the configured plugins in dependency order, as fast as the order allows.

Each plugin is loaded and activated as soon as all its dependencies are active, so
independent plugins start in parallel. A plugin whose dependency fails to start is not
started, and says why in ``refused``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from spec_kit_runtime.errors import RuntimeFailure, from_data
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.policy.dependencies import dependency_order
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire.codec import unpack_value

if TYPE_CHECKING:
    from .lifecycle import Lifecycle
    from .slots import SlotTable

log = logging.getLogger(__name__)


class StartUp:
    """The ordered start of the plugins ``run`` was given (none until ``begin``)."""

    def __init__(self, lifecycle: Lifecycle, slots: SlotTable) -> None:
        self.lifecycle, self.slots = lifecycle, slots
        self._done: Callable[[], None] = lambda: None
        self._plugins: dict[str, tuple[PluginInfo, dict[str, Any]]] = {}
        self.refused: dict[str, str] = {}  # not started, and why
        self._waiting: dict[str, set[str]] = {}  # plugin → the dependencies it waits for
        self.pending: set[str] = set()  # not yet active, nor given up on
        self.failed: dict[str, str] = {}  # could not be loaded or activated: why

    def begin(self, plugins: Iterable[tuple[PluginInfo, dict[str, Any]]],
              done: Callable[[], None]) -> None:
        """Start ``plugins``; ``done`` once, when every one is active or given up on."""
        self._done = done
        self._plugins = {info.id: (info, config) for info, config in plugins}
        ordered = dependency_order({pid: info.dependencies
                                    for pid, (info, _) in self._plugins.items()})
        self.refused = dict(ordered.refused)
        self._waiting = {pid: set(self._plugins[pid][0].dependencies) for pid in ordered.order}
        self.pending = set(ordered.order)
        for plugin_id, reason in self.refused.items():
            log.error("plugin %s not started: %s", plugin_id, reason)
        if not self.pending:
            self._done()
        for plugin_id in [p for p, needs in self._waiting.items() if not needs]:
            self._start(plugin_id)

    def _start(self, plugin_id: str) -> None:
        del self._waiting[plugin_id]
        info, config = self._plugins[plugin_id]

        def activated(ok: bool, body: bytes) -> None:
            if not ok and _restarted(body):
                self._after_restart(plugin_id)
            else:
                self._finished(plugin_id, ok)

        def loaded(ok: bool, body: bytes) -> None:
            if ok:
                self.lifecycle.activate(plugin_id, activated)
            elif _restarted(body):
                self._after_restart(plugin_id)
            else:
                self._finished(plugin_id, False)

        self.lifecycle.load(info, config, loaded)

    def _after_restart(self, plugin_id: str) -> None:
        """A restart asked meanwhile took over this plugin's start: it has started when
        that restart leaves it active."""
        def settled(_ok: bool, _body: bytes) -> None:
            slot = self.slots.get(plugin_id)
            self._finished(plugin_id, slot is not None and slot.status == PluginState.ACTIVE)

        self.lifecycle.after_current(plugin_id, settled)

    def _finished(self, plugin_id: str, ok: bool) -> None:
        slot = self.slots.get(plugin_id)
        if not ok and slot is not None:
            self.failed[plugin_id] = slot.last_error or "its start failed"
        if plugin_id in self.pending:
            self.pending.discard(plugin_id)
            if not self.pending:
                self._done()
        if ok:
            log.info("plugin %s is active", plugin_id)
        for waiting, needs in list(self._waiting.items()):
            if plugin_id not in needs:
                continue
            if ok:
                needs.discard(plugin_id)
                if not needs:
                    self._start(waiting)
            else:
                del self._waiting[waiting]
                self.refused[waiting] = f"its dependency '{plugin_id}' did not start"
                log.error("plugin %s not started: %s", waiting, self.refused[waiting])
                self._finished(waiting, False)


def _restarted(body: bytes) -> bool:
    """Whether a failed operation's answer says a restart interrupted it."""
    try:
        error = from_data(unpack_value(body))
    except RuntimeFailure:
        return False
    return error.context.get("interrupted_by") == "restart"
