"""The contracts' host services as a plugin sees them: proxies of what the supervisor serves.

A plugin gets them from ``registry.get_service(IFileSystemService)`` and so on. Each call
is a ``ServiceCall`` to the supervisor, answered like a send (``WorkerHost.call_service``:
synchronous, from the plugin's main thread, serving calls to the plugin meanwhile); the
supervisor decides everything (which plugin, which folders, how much), so these only
carry arguments and turn answers back into what the Protocols promise. Errors arrive
typed: ``ServiceFileNotFoundError`` is a ``FileNotFoundError``, ``PathRefusedError`` a
``PermissionError``, both ``OSError``s, every one a ``ServiceError``.

Logging is one-way (no answer to wait for), filtered first by ``set_level`` here (INFO
until set). Events need no supervisor service: ``emit`` is the bus's, under the
plugin's own name, and subscriptions are the registry's; the scope is enforced as for
any message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spec_kit_contracts import (
    IConfigService,
    IEventService,
    IFileSystemService,
    ILoggingService,
    IStateService,
)

from spec_kit_runtime.wire.protocol import LOG_LEVELS as LEVELS

if TYPE_CHECKING:
    from collections.abc import Callable

    from .bus import WorkerBus
    from .host import WorkerHost


def host_services(host: WorkerHost, bus: WorkerBus) -> dict[type, Any]:
    """The services of the plugin in ``host``, by contracts interface."""
    return {
        IConfigService: ConfigService(host),
        IFileSystemService: FileSystemService(host),
        IStateService: StateService(host),
        ILoggingService: LoggingService(host),
        IEventService: EventService(host, bus),
    }


class _Proxy:
    service = ""

    def __init__(self, host: WorkerHost) -> None:
        self._host = host

    def _call(self, method: str, **args: Any) -> Any:
        return self._host.call_service(self.service, method, args)


def _path(path: str | os.PathLike[str]) -> str:
    value = os.fspath(path)
    if not isinstance(value, str):
        raise TypeError(f"a path must be str or a str path, not {type(value).__name__}")
    return value


class ConfigService(_Proxy):
    """IConfigService: the plugin's own config section (``set`` changes this worker's view
    only; ``save`` is refused by the supervisor: the runtime config is not the plugin's)."""

    service = "config"

    def get(self, key: str, default: Any = None) -> Any:
        found, value = self._call("get", key=key)
        return value if found else default

    def set(self, key: str, value: Any) -> None:
        self._call("set", key=key, value=value)

    def get_section(self, section: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("get_section", section=section)
        return result

    def save(self) -> None:
        self._call("save")


class FileSystemService(_Proxy):
    """IFileSystemService within the plugin's roots: relative paths are in its private
    folder, absolute ones must be inside a configured root."""

    service = "filesystem"

    def read_file(self, path: str | os.PathLike[str]) -> str:
        result: str = self._call("read_file", path=_path(path))
        return result

    def write_file(self, path: str | os.PathLike[str], content: str) -> None:
        if not isinstance(content, str):
            raise TypeError(f"content must be str, not {type(content).__name__}")
        self._call("write_file", path=_path(path), content=content)

    def exists(self, path: str | os.PathLike[str]) -> bool:
        result: bool = self._call("exists", path=_path(path))
        return result

    def create_directory(self, path: str | os.PathLike[str], parents: bool = True) -> None:
        self._call("create_directory", path=_path(path), parents=bool(parents))

    def list_directory(self, path: str | os.PathLike[str], pattern: str = "*") -> list[Path]:
        return [Path(p) for p in self._call("list_directory", path=_path(path),
                                            pattern=pattern)]

    def delete(self, path: str | os.PathLike[str]) -> None:
        self._call("delete", path=_path(path))


class StateService(_Proxy):
    """IStateService: the plugin's state, kept by the supervisor across worker restarts."""

    service = "state"

    def get_state(self, key: str, default: Any = None) -> Any:
        found, value = self._call("get_state", key=key)
        return value if found else default

    def set_state(self, key: str, value: Any) -> None:
        self._call("set_state", key=key, value=value)

    def clear_state(self, key: str | None = None) -> None:
        self._call("clear_state", key=key)

    def persist_state(self) -> None:
        self._call("persist_state")


class LoggingService(_Proxy):
    """ILoggingService: lines into the supervisor's log, tagged with the plugin's id."""

    service = "logging"

    def __init__(self, host: WorkerHost) -> None:
        super().__init__(host)
        self._level = LEVELS["INFO"]

    def debug(self, message: str, **kwargs: Any) -> None:
        self._log("DEBUG", message, kwargs)

    def info(self, message: str, **kwargs: Any) -> None:
        self._log("INFO", message, kwargs)

    def warning(self, message: str, **kwargs: Any) -> None:
        self._log("WARNING", message, kwargs)

    def error(self, message: str, **kwargs: Any) -> None:
        self._log("ERROR", message, kwargs)

    def critical(self, message: str, **kwargs: Any) -> None:
        self._log("CRITICAL", message, kwargs)

    def set_level(self, level: str) -> None:
        """Lines below ``level`` are not sent at all."""
        if level.upper() not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        self._level = LEVELS[level.upper()]

    def _log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] >= self._level:
            self._host.tell_service(self.service, "log", {
                "level": level, "message": str(message),
                "fields": {str(k): repr(v) for k, v in fields.items()},
            })


class EventService:
    """IEventService over the plugin's bus: ``emit("done", d)`` publishes
    ``event:{plugin}:done`` (a name already starting with ``{plugin}:`` is kept as it is);
    ``subscribe("design:*", h)`` calls ``h(event)`` for ``event:design:*``."""

    def __init__(self, host: WorkerHost, bus: WorkerBus) -> None:
        self._host, self._bus = host, bus

    def emit(self, event_name: str, data: dict[str, Any]) -> None:
        own = f"{self._host.scope.plugin_id}:"
        self._bus.emit(event_name if event_name.startswith(own) else own + event_name, data)

    def subscribe(self, event_name: str, handler: Callable[..., Any]) -> str:
        return str(self._bus.subscribe(f"event:{event_name}", handler))

    def unsubscribe(self, subscription_id: str) -> None:
        self._host.check_thread()
        self._host.registry.remove(int(subscription_id))
