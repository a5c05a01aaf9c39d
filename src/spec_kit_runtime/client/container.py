"""PluginContainer: the 1.0 front door, now backed by a supervisor process.

``PluginContainer()`` starts a private supervisor tied to the calling process (it stops
when the caller exits, even by SIGKILL), configured by the dict's ``runtime`` keys and its
``plugins`` mapping (paths in them relative to the current directory). A caller need not
call ``shutdown()``: its supervisor then removes its own folder as it exits
(``private_dir``), and it never writes on the caller's terminal, only to its log file
(``private_logs``, the dict's ``log_dir``). ``PluginContainer({"attach": True})`` talks to
the one ``spec-kit-runtime run`` started instead. Discovery happens here and runs no
plugin code; everything else happens in the supervisor and the workers.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from spec_kit_contracts import Message, PluginStatus

from spec_kit_runtime.errors import ConfigError, ManifestError, RuntimeFailure
from spec_kit_runtime.inprocess.service_provider import ServiceProvider
from spec_kit_runtime.linux.child_wait import wait_exit
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.discovery import discover
from spec_kit_runtime.plugins.facts import MAX_FACTS_ASKED, MAX_FACTS_BYTES
from spec_kit_runtime.plugins.plugin_info import PluginInfo
from spec_kit_runtime.wire.protocol import ControlOp

from . import private_dir, private_logs
from .caller_handlers import CallerHandlers
from .client import SupervisorClient
from .host_bus import HostBus
from .launcher import launch_supervisor
from .loaded_plugins import LoadedPlugins

log = logging.getLogger(__name__)
_RUNTIME_KEYS = frozenset(RuntimeConfig.__dataclass_fields__) - {"plugins", "plugin_paths",
                                                                 "runtime_dir"}


class PluginContainer:
    """Discovers, loads and drives plugins, each in its own worker process."""

    def __init__(self, runtime_config: dict[str, Any] | None = None) -> None:
        self.runtime_config = dict(runtime_config or {})
        self.discovered_plugins: dict[str, PluginInfo] = {}
        self.discovery_errors: list[ManifestError] = []
        self.plugin_info: dict[str, PluginInfo] = {}
        self.service_provider = ServiceProvider()
        self._process: subprocess.Popen[bytes] | None = None
        self._callers: CallerHandlers | None = None
        self._private_dir: Path | None = None
        attach = self.runtime_config.get("attach")
        if attach:
            runtime_dir = self.runtime_config.get("runtime_dir")
            self._first = SupervisorClient.find(Path(runtime_dir) if runtime_dir else None)
        else:
            attached = _attached_by_environment() if attach is None else None
            self._first = attached or self._start_private_supervisor()
        if self._process is None:
            ignored = sorted(set(self.runtime_config) - {"attach", "runtime_dir"})
            if ignored:
                log.warning("attached to a running supervisor: its own settings apply, "
                            "not runtime_config's %s", ", ".join(ignored))
        # One connection per thread: a caller handler (on a pool thread) may call back into
        # the container while the thread that sent the message still waits on its own.
        self._clients_lock = threading.Lock()
        self._clients = [self._first]
        self._local = threading.local()
        self._local.client = self._first
        self.plugins = LoadedPlugins(self._control, facts_per_question=min(
            MAX_FACTS_ASKED, self._first.max_message_bytes // (2 * MAX_FACTS_BYTES)))
        self.message_bus = HostBus(lambda message: self.send_message("", message),
                                   self._host_subscribe, self.unsubscribe)

    @property
    def _client(self) -> SupervisorClient:
        client: SupervisorClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._first.another()
            with self._clients_lock:
                self._clients.append(client)
            self._local.client = client
        return client

    def _control(self, op: ControlOp, **args: Any) -> Any:
        """A quick control operation (not a lifecycle one) on this thread's connection."""
        return self._client.control(op, timeout=10.0, **args)

    def _close_clients(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                client.close()

    def _start_private_supervisor(self) -> SupervisorClient:
        """Start a supervisor of our own in a fresh folder, which it removes as it exits
        (``shutdown()`` waits for that); its output goes to a log file of its own."""
        settings = {k: v for k, v in self.runtime_config.items() if k in _RUNTIME_KEYS}
        if "data_dir" in settings:
            settings["data_dir"] = _absolute(settings["data_dir"])
        ignored = set(self.runtime_config) - _RUNTIME_KEYS - {"attach", "plugins", "log_dir"}
        if ignored:
            log.warning("runtime_config keys ignored: %s", ", ".join(sorted(ignored)))
        try:  # JSON: the supervisor then reads it without importing PyYAML
            config = json.dumps({"runtime": settings, "plugins": _absolute_roots(
                self.runtime_config.get("plugins"))}, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"runtime_config cannot be handed to the supervisor: {exc}"
                              ) from None
        for stale in private_dir.sweep():
            log.debug("removed %s: its supervisor was killed", stale)
        self._private_dir, claim = private_dir.create()
        try:
            config_file = self._private_dir / "runtime.json"
            config_file.write_text(config)
            log_file = _new_log_file(self.runtime_config.get("log_dir"))
            self._process = launch_supervisor(self._private_dir / "run", config_file,
                                              private_dir=self._private_dir, log_file=log_file)
            log.debug("private supervisor (pid %d) logs to %s", self._process.pid, log_file)
            return SupervisorClient.find(self._private_dir / "run")
        except BaseException:
            if self._process is not None:  # started but unreachable: do not wait on it
                self._process.kill()
            self._discard_private()
            raise
        finally:
            os.close(claim)  # the supervisor holds the folder now (or is gone)

    # -- discovery -------------------------------------------------------------------------

    def discover_plugins(self, search_paths: Iterable[Path]) -> list[PluginInfo]:
        """Find plugins without running their code; bad manifests land in discovery_errors."""
        result = discover(search_paths)
        for error in result.errors:
            log.error("%s", error)
        self.discovery_errors = list(result.errors)
        self.discovered_plugins.update(result.by_id())
        return list(result.plugins)

    # -- lifecycle -------------------------------------------------------------------------

    def load_plugin(self, plugin_info: PluginInfo, config: dict[str, Any] | None = None) -> str:
        """Spawn the plugin's worker, load and initialize it; returns the plugin id."""
        source = plugin_info.manifest_path or plugin_info.path
        answer = self._client.control(
            ControlOp.LOAD, manifest=plugin_info.to_manifest(), source=str(source),
            root=str(plugin_info.root), config=config or {},
        )
        self.plugin_info[plugin_info.id] = plugin_info
        self.plugins.remember(plugin_info.id, answer)
        return plugin_info.id

    def activate_plugin(self, plugin_id: str) -> None:
        self._client.control(ControlOp.ACTIVATE, plugin=plugin_id)

    def deactivate_plugin(self, plugin_id: str) -> None:
        self._client.control(ControlOp.DEACTIVATE, plugin=plugin_id)

    def unload_plugin(self, plugin_id: str) -> None:
        """Deactivate (if active), shut down and stop the plugin's worker."""
        self._client.control(ControlOp.UNLOAD, plugin=plugin_id)
        self.plugin_info.pop(plugin_id, None)
        self.plugins.forget(plugin_id)

    def stop_plugin(self, plugin_id: str) -> None:
        """Stop the plugin's worker in order; it stays stopped (no restart) until started."""
        self._client.control(ControlOp.STOP, plugin=plugin_id)

    def start_plugin(self, plugin_id: str) -> None:
        """Start a stopped or failed plugin again, up to active."""
        self.plugins.remember(plugin_id, self._client.control(ControlOp.START, plugin=plugin_id))

    def restart_plugin(self, plugin_id: str) -> None:
        """Stop the plugin's worker in order and start it again, up to active."""
        self.plugins.remember(plugin_id, self._client.control(ControlOp.RESTART, plugin=plugin_id))

    def get_plugin_status(self, plugin_id: str) -> PluginStatus | None:
        """The plugin's PluginStatus now (None: not loaded); see ``PluginHandle.status``."""
        return self.plugins.status(plugin_id)

    def status(self) -> dict[str, Any]:
        """The supervisor's status: itself and every plugin."""
        result: dict[str, Any] = self._client.control(ControlOp.STATUS, timeout=10.0)
        return result

    def health(self) -> dict[str, Any]:
        """healthy / degraded / unhealthy, live, ready, and the reasons (see health.py)."""
        result: dict[str, Any] = self._client.control(ControlOp.HEALTH, timeout=10.0)
        return result

    def follow_events(self, pattern: str = "event:system:*") -> EventStream:
        """Events matching ``pattern`` from now on, as they happen (lifecycle events by
        default), on a connection of its own: iterate it, and ``close()`` it (or use it in
        a ``with``) when done."""
        client = self._first.another()
        try:
            return EventStream(client.follow(pattern), client)
        except BaseException:
            client.close()
            raise

    # -- messages --------------------------------------------------------------------------

    def send_message(self, plugin_id: str, message: Message, *,
                     wait_for_ready: bool | None = None) -> Any:
        """Send ``message`` with ``plugin_id``'s scope; returns the handler's result.

        A call to a plugin that is starting or restarting waits until it is active, up to
        the call's deadline, unless ``wait_for_ready`` is False (fail at once); None: as
        the supervisor's ``runtime.wait_for_ready`` (true unless configured)."""
        return self._client.send(message, as_plugin=plugin_id, wait_for_ready=wait_for_ready)

    def subscribe(self, plugin_id: str, pattern: str, handler: Callable[[Message], Any],
                  priority: int = 50) -> str:
        """Handle ``pattern`` here, in the caller, within ``plugin_id``'s scope.

        ``handler(message)`` runs on a small thread pool of this process whenever a plugin
        (or a caller) sends to a matching address; returns a subscription id.
        """
        return self._caller_handlers().subscribe(plugin_id, pattern, handler, priority)

    def _host_subscribe(self, pattern: str, handler: Callable[[Message], Any],
                        priority: int) -> str:
        """``message_bus.subscribe``: a handler here, with the host's authority."""
        return self._caller_handlers().subscribe("", pattern, handler, priority, host=True)

    def _caller_handlers(self) -> CallerHandlers:
        if self._callers is None:
            self._callers = CallerHandlers(self._first.endpoint, self._first.token,
                                           self._first.server_key)
        return self._callers

    def unsubscribe(self, subscription_id: str) -> bool:
        """Remove a handler added by ``subscribe``."""
        return self._callers is not None and self._callers.unsubscribe(subscription_id)

    # -- ending ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every plugin (a private supervisor exits too); safe to call twice."""
        if self._callers is not None:
            self._callers.close()
            self._callers = None
        if self._process is None:
            self._close_clients()
            return
        try:
            if self._process.poll() is None:  # else it is gone: nobody would answer
                self._client.control(ControlOp.SHUTDOWN, timeout=10.0)
        except Exception as exc:  # the supervisor may be gone already
            log.warning("shutdown request failed: %s", exc)
        finally:
            self._close_clients()
            self._discard_private()

    def _discard_private(self) -> None:
        """Wait for the private supervisor (it removes its folder as it exits), and remove
        what is left of the folder if it could not (killed)."""
        if self._process is not None:
            try:
                wait_exit(self._process, 60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._private_dir is not None:
            private_dir.remove(self._private_dir)
            self._private_dir = None

    def __enter__(self) -> PluginContainer:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.shutdown()




def _new_log_file(log_dir: Any) -> Path | None:
    """A new file for the private supervisor's output (``private_logs``); None if the folder
    is unusable (said in a warning): its output is then discarded, never the caller's."""
    try:
        return private_logs.new_log_file(Path(log_dir) if log_dir is not None else None)
    except ConfigError as exc:
        log.warning("%s: the private supervisor's output is discarded", exc)
        return None


ATTACH_VARIABLE = "SPEC_KIT_RUNTIME_ATTACH"


def _attached_by_environment() -> SupervisorClient | None:
    """A connection to the running supervisor ``SPEC_KIT_RUNTIME_ATTACH`` names (``1``: the
    user's default runtime directory; else an absolute runtime directory), if one answers
    there, from a folder of ours (``SupervisorClient.find`` checks).

    The fast path for one-shot callers that cannot be changed, such as Spec-Kit's CLI:
    attaching costs a connection instead of a private supervisor's start. It is opt-in,
    since plugins loaded through it stay loaded in that supervisor after the caller exits.
    ``{"attach": False}`` in the runtime config overrides it.
    """
    wanted = os.environ.get(ATTACH_VARIABLE, "").strip()
    if wanted in ("", "0"):
        return None
    if wanted != "1" and not os.path.isabs(wanted):
        log.warning("%s=%r ignored: it must be 1 or an absolute runtime directory",
                    ATTACH_VARIABLE, wanted)
        return None
    try:
        return SupervisorClient.find(None if wanted == "1" else Path(wanted))
    except RuntimeFailure as exc:
        log.debug("%s=%s: no supervisor to attach to (%s); starting a private one",
                  ATTACH_VARIABLE, wanted, exc)
        return None


def _absolute(path: Any) -> Any:
    """A path from the caller's point of view (the config file lives in a temporary folder)."""
    return os.path.abspath(path) if isinstance(path, str | os.PathLike) else path


def _absolute_roots(plugins: Any) -> Any:
    """``plugins`` with each ``filesystem`` root's path made absolute; the rest as it is
    (the supervisor validates it all)."""
    if not isinstance(plugins, dict):
        return plugins
    result = {}
    for plugin_id, entry in plugins.items():
        roots = entry.get("filesystem") if isinstance(entry, dict) else None
        if isinstance(roots, list):
            entry = {**entry, "filesystem": [
                {**root, "path": _absolute(root.get("path"))} if isinstance(root, dict) else root
                for root in roots]}
        result[plugin_id] = entry
    return result


class EventStream:
    """The events a ``follow_events`` subscription receives, until ``close()``."""

    def __init__(self, events: Iterator[Message], client: SupervisorClient) -> None:
        self._events, self._client = events, client

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Message:
        return next(self._events)

    def close(self) -> None:
        """End the subscription and its connection (idempotent)."""
        self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
