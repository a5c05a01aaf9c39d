"""Which host service calls exist, their arguments checked, and who runs them for whom.

The WorkerDoor hands over a ``ServiceCall`` with the slot of the connection it came on:
that slot is the plugin the call is for, whatever the call says (no field names one). A
call is answered only if its method is in ``_methods`` and its arguments are exactly the
method's, each of the right type; anything else gets a ServiceError reply (cid 0: a
warning in the log, charged to the plugin's output budget) and nothing in the supervisor
changes. Calls touching files (file system, state) run on the plugin's background lane;
the others (config, logging) on the loop, where they cost no more than routing does.

Layout of the data directory (``runtime.data_dir``, see ``plugins.data_dir``)::

    DATA_DIR/plugins/ID/         the plugin's data folder, made at each spawn: the private
                                 root of its file system, where its relative paths go (and,
                                 under Landlock, the only folder its worker may write)
    DATA_DIR/state/ID.msgpack    its IStateService state (0700 folder: not the worker's)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import ConfigError, RuntimeFailure, ServiceError
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.data_dir import default_data_dir
from spec_kit_runtime.policy.file_roots import Root
from spec_kit_runtime.supervisor.output_capture import LINE_OVERHEAD
from spec_kit_runtime.supervisor.slots import PluginSlot, Responder
from spec_kit_runtime.wire.codec import pack_error, pack_value, unpack_value
from spec_kit_runtime.wire.protocol import ServiceCall
from spec_kit_runtime.wire.rundir import private_directory

from .background import Background
from .config_view import ConfigView
from .filesystem import FileSystem
from .logging_service import log_lines
from .state import StateStore

log = logging.getLogger(__name__)
ENVELOPE_BYTES = 8192  # of max_message_bytes: room for a path and headers around a file
CONFIG_MAX_BYTES = 1 << 20
_CLOSE_TIMEOUT = 5.0

Check = tuple[Callable[[Any], bool], str]
STRING: Check = (lambda v: type(v) is str, "a string")
OPTIONAL_STRING: Check = (lambda v: v is None or type(v) is str, "a string or nil")
FLAG: Check = (lambda v: type(v) is bool, "true or false")
VALUE: Check = (lambda v: True, "a value")
TEXT_MAP: Check = (lambda v: type(v) is dict and all(
    type(k) is str and type(x) is str for k, x in v.items()), "a map of strings to strings")


class _Plugin:
    """What the host services keep for one plugin, across its workers."""

    def __init__(self, plugin_id: str, state: StateStore) -> None:
        self.plugin_id = plugin_id
        self.state = state
        self.files: FileSystem | None = None  # made on its lane at the first call
        self.config: ConfigView | None = None  # made from the slot's config per worker


@dataclass(frozen=True)
class _Call:
    """One call in progress: the plugin's slot (loop only), its host service state, when."""

    slot: PluginSlot
    plugin: _Plugin
    now: float

    def log(self, level: str, message: str, fields: dict[str, str]) -> int:
        return log_lines(self.slot.plugin_id, self.slot.output, level, message, fields,
                         self.now)


@dataclass(frozen=True)
class _Method:
    """A call: ``name`` of what ``target`` finds for it, called with the arguments by name."""

    target: Callable[[_Call], Any]
    name: str
    params: tuple[tuple[str, Check], ...]
    lane: bool  # file I/O: on the plugin's background lane, not the loop

    def run(self, call: _Call, args: dict[str, Any]) -> Any:
        return getattr(self.target(call), self.name)(**args)


def _on(target: Callable[[_Call], Any], name: str, *params: tuple[str, Check],
        lane: bool = False) -> _Method:
    return _Method(target, name, params, lane)


class HostServices:
    """Serves IConfigService, IFileSystemService, IStateService and ILoggingService."""

    def __init__(self, config: RuntimeConfig, runtime_dir: Path,
                 now: Callable[[], float]) -> None:
        self.config = config
        self.data_dir = Path(os.path.realpath(config.data_dir or default_data_dir()))
        self._check_roots(Path(os.path.realpath(runtime_dir)))
        self._now = now
        self._background = Background()
        self.fd = self._background.fd  # readable when answers from the background wait
        self._plugins: dict[str, _Plugin] = {}
        view, files = self._view, self._files

        def state(call: _Call) -> StateStore:
            return call.plugin.state

        def itself(call: _Call) -> _Call:
            return call

        path, key = ("path", STRING), ("key", STRING)
        self._methods: dict[tuple[str, str], _Method] = {
            ("config", "get"): _on(view, "get", key),
            ("config", "get_section"): _on(view, "get_section", ("section", STRING)),
            ("config", "set"): _on(view, "set", key, ("value", VALUE)),
            ("config", "save"): _on(view, "save"),
            ("filesystem", "read_file"): _on(files, "read_file", path, lane=True),
            ("filesystem", "write_file"): _on(files, "write_file", path, ("content", STRING),
                                              lane=True),
            ("filesystem", "exists"): _on(files, "exists", path, lane=True),
            ("filesystem", "create_directory"): _on(files, "create_directory", path,
                                                    ("parents", FLAG), lane=True),
            ("filesystem", "list_directory"): _on(files, "list_directory", path,
                                                  ("pattern", STRING), lane=True),
            ("filesystem", "delete"): _on(files, "delete", path, lane=True),
            ("state", "get_state"): _on(state, "get", key, lane=True),
            ("state", "set_state"): _on(state, "set", key, ("value", VALUE), lane=True),
            ("state", "clear_state"): _on(state, "clear", ("key", OPTIONAL_STRING), lane=True),
            ("state", "persist_state"): _on(state, "persist", lane=True),
            ("logging", "log"): _on(itself, "log", ("level", STRING), ("message", STRING),
                                    ("fields", TEXT_MAP)),
        }

    # -- the loop's side -------------------------------------------------------------------

    def call(self, slot: PluginSlot, record: ServiceCall, respond: Responder) -> None:
        """Answer ``record`` for ``slot``'s plugin (the connection's: never a field)."""
        if not record.cid:
            respond = self._one_way(slot)
        try:
            method = self._methods.get((record.service, record.method))
            if method is None:
                raise ServiceError(f"no host service call '{record.service}.{record.method}'",
                                   service=record.service, method=record.method)
            args = _arguments(record, method)
        except RuntimeFailure as exc:
            respond(False, pack_error(exc))
            return
        call = _Call(slot, self._plugin(slot.plugin_id), self._now())
        if not method.lane:
            respond(*_answer(lambda: method.run(call, args)))
        elif not self._background.submit(slot.plugin_id,
                                         lambda: _answer(lambda: method.run(call, args)),
                                         respond):
            respond(False, pack_error(ServiceError(
                f"plugin '{slot.plugin_id}' has too many host service calls waiting",
                plugin=slot.plugin_id)))

    def worker_ended(self, plugin_id: str) -> None:
        """A worker of the plugin ended: its config view goes, its state is written."""
        plugin = self._plugins.get(plugin_id)
        if plugin is None:
            return
        plugin.config = None

        def written(ok: bool, body: bytes) -> None:
            if not ok:
                log.error("plugin %s: state not written: %s", plugin_id,
                          unpack_value(body).get("message"))

        if not self._background.submit(plugin_id, lambda: _answer(plugin.state.persist),
                                       written):
            log.warning("plugin %s: state not written now (its calls queue is full); it "
                        "will be at the next end or at exit", plugin_id)

    def completed(self) -> None:
        """The background's fd is readable: send the answers waiting there."""
        self._background.completed()

    def close(self) -> None:
        """Finish what is queued, then write every plugin's state (the supervisor stops)."""
        self._background.close(_CLOSE_TIMEOUT)
        for plugin_id, plugin in self._plugins.items():
            try:
                plugin.state.persist()
            except RuntimeFailure as exc:
                log.error("plugin %s: state not written: %s", plugin_id, exc.message)

    # -- per plugin ------------------------------------------------------------------------

    def _plugin(self, plugin_id: str) -> _Plugin:
        plugin = self._plugins.get(plugin_id)
        if plugin is None:
            store = StateStore(self.data_dir / "state" / f"{plugin_id}.msgpack",
                               self.config.state_max_bytes, lambda: self._folder("state"))
            plugin = self._plugins[plugin_id] = _Plugin(plugin_id, store)
        return plugin

    def _view(self, call: _Call) -> ConfigView:
        if call.plugin.config is None:
            call.plugin.config = ConfigView(
                call.slot.config, min(CONFIG_MAX_BYTES, self.config.max_message_bytes))
        return call.plugin.config

    def _files(self, call: _Call) -> FileSystem:
        """The plugin's file system, made at its first call (on its lane: it makes folders)."""
        if call.plugin.files is None:
            worker = call.slot.worker
            asked = worker.confinement if worker is not None else None
            owner = (asked.uid, asked.gid) if asked is not None and asked.uid is not None \
                and asked.gid is not None else None
            call.plugin.files = FileSystem(self._roots(call.plugin.plugin_id, owner),
                                           self.file_limit)
        return call.plugin.files

    @property
    def file_limit(self) -> int:
        """The largest file a plugin may read or write: it must fit in one message."""
        return max(self.config.max_message_bytes - ENVELOPE_BYTES, 0)

    def _roots(self, plugin_id: str, owner: tuple[int, int] | None) -> tuple[Root, ...]:
        """The plugin's data folder first (made, with its owner, at each spawn; what the
        service makes there is ``owner``'s too), then the configured roots."""
        private = self.data_dir / "plugins" / plugin_id
        if not private.is_dir():
            raise ServiceError(f"plugin '{plugin_id}' has no data folder {private}")
        return (Root(os.path.realpath(private), True, owner),
                *self.config.settings_for(plugin_id).filesystem)

    def _folder(self, name: str) -> Path:
        """``DATA_DIR/name``, made 0700 (or checked private) in the data directory."""
        return private_directory(self.data_dir / name, f"data directory's {name} folder")

    def _check_roots(self, runtime_dir: Path) -> None:
        """No configured root may hold the data directory (every plugin's state and files)
        or the runtime directory (the client token), nor lie inside the data directory."""
        for plugin_id, settings in self.config.plugins.items():
            for index, root in enumerate(settings.filesystem):
                where = f"plugins.{plugin_id}.filesystem[{index}] ({root.path})"
                for what, folder in (("data directory", self.data_dir),
                                     ("runtime directory", runtime_dir)):
                    if root.holds(str(folder)):
                        raise ConfigError(f"{where} holds the {what} {folder}: a plugin could "
                                          "reach what is not its own there")
                if Root(str(self.data_dir), False).holds(root.path):
                    raise ConfigError(f"{where} lies inside the data directory "
                                      f"{self.data_dir}")

    def _one_way(self, slot: PluginSlot) -> Responder:
        """Where a refusal of a call with no reply goes: the log, within the plugin's
        output budget (a plugin that keeps sending bad ones cannot flood the log)."""
        def respond(ok: bool, body: bytes) -> None:
            if ok:
                return
            message = str(unpack_value(body).get("message"))
            if slot.output.take(len(message), self._now(), LINE_OVERHEAD):
                log.warning("plugin %s: one-way host service call refused: %s",
                            slot.plugin_id, message)

        return respond


MAX_NESTING = 64  # levels of lists and maps in a call's arguments (state, config values)


def _arguments(record: ServiceCall, method: _Method) -> dict[str, Any]:
    """The call's arguments: a map with exactly the method's names, each of its type."""
    args = unpack_value(record.body)
    where = f"{record.service}.{record.method}"
    if not _nests_within(args, MAX_NESTING):
        raise ServiceError(f"{where}: the arguments nest more than {MAX_NESTING} deep",
                           service=record.service, method=record.method)
    expected = [name for name, _ in method.params]
    if not isinstance(args, dict) or set(args) != set(expected):
        got = sorted(map(str, args)) if isinstance(args, dict) else type(args).__name__
        raise ServiceError(f"{where} takes a map of {expected}, got {got}", service=record.service,
                           method=record.method)
    for name, (check, description) in method.params:
        if not check(args[name]):
            raise ServiceError(f"{where}: '{name}' must be {description}, not "
                               f"{type(args[name]).__name__}", service=record.service,
                               method=record.method)
    return args


def _nests_within(value: Any, limit: int) -> bool:
    """Whether no list, tuple or map in ``value`` lies more than ``limit`` levels deep
    (checked without recursion: the value is the plugin's)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | tuple | dict):
            if depth > limit:
                return False
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _answer(run: Callable[[], Any]) -> tuple[bool, bytes]:
    """A call's reply body: its result, or the RuntimeFailure it raised (a RecursionError
    too: a folder nested deeper than Python recurses, say; the plugin's, not ours)."""
    try:
        return True, pack_value(run())
    except RuntimeFailure as exc:
        return False, pack_error(exc)
    except RecursionError:
        return False, pack_error(ServiceError("the call nests deeper than the service goes"))
