"""The answers of ``status``, ``health`` and ``plugins`` as records, and their one codec.

The supervisor builds the records and answers with ``to_data(record)``; every reader (the
CLI, ``top``, the HTTP endpoints, a container's plugin views) takes ``from_data(Type,
data)`` and reads attributes. The plain data is what msgpack and JSON carry: a record is a
map of its fields in their order, a tuple a list, an enum member its text (the wire codec
refuses enum members), and the free-form maps (the supervisor's cgroups, a worker's
hardening, a plugin's facts) pass as they are.

Reading is as lenient as the readers always were: keys it does not know are ignored (a
newer supervisor may say more). A missing key or a value of another type is a
ProtocolError naming it, where a reader used to fail on it with a KeyError or TypeError.

Making these records costs about 4 ms, which no cold start should pay for an answer it may
never give or read: the supervisor and a container import this module where they use it.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from types import NoneType, UnionType
from typing import Any, TypeVar

from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.policy.call_stats import CallFigures
from spec_kit_runtime.policy.grants import Grants
from spec_kit_runtime.policy.limits import Limits
from spec_kit_runtime.policy.output_budget import OutputFigures
from spec_kit_runtime.policy.restart import RestartType


@dataclass(frozen=True)
class Totals:
    """The supervisor's message figures over all its plugins, and their restarts."""

    handled: int
    errors: int
    in_flight: int
    restarts: int


@dataclass(frozen=True)
class SupervisorStatus:
    pid: int
    version: str
    endpoint: str  # for clients
    uptime: float  # seconds
    plugins: int  # how many it holds
    forkserver_pid: int | None  # None: not running
    start_method: str
    cgroups: dict[str, Any]  # whether it made cgroups: ``active``, its groups or why not
    http: str | None  # HOST:PORT of the HTTP endpoints; None: off
    log_file: str | None  # a container's private supervisor's log
    totals: Totals


@dataclass(frozen=True)
class UsageFigures:
    """The watchdog's latest sample of a worker's process tree, rounded."""

    rss_mb: float
    cpu_percent: float
    processes: int
    open_files: int


@dataclass(frozen=True)
class PluginReport:
    """One plugin in ``status``."""

    id: str
    name: str
    version: str
    state: str  # a PluginState, or whatever other status its worker reported
    pid: int | None  # of its worker; None: none running
    uptime: float | None  # of its worker
    busy: str | None  # the lifecycle operation under way
    queued: tuple[str, ...]  # those waiting behind it
    last_exit: str | None  # how its last worker ended, in words
    last_exit_at: float | None
    last_error: str | None
    sandbox: bool
    restarts: int
    restart_type: RestartType
    grants: Grants
    limits: Limits
    output: OutputFigures
    messages: CallFigures
    cgroups: tuple[str, ...]  # its worker's groups
    hardening: dict[str, Any]  # the layers its worker runs under (linux.hardening)
    usage: UsageFigures | None  # None: no worker, or not sampled yet
    subscriptions: tuple[str, ...]  # the patterns its worker registered handlers for
    waiting: int  # calls held until it is active again (supervisor.ready_waits)


@dataclass(frozen=True)
class Status:
    """The ``status`` answer."""

    supervisor: SupervisorStatus
    plugins: tuple[PluginReport, ...]


@dataclass(frozen=True)
class PluginEntry:
    """One plugin in the ``plugins`` answer (``client.loaded_plugins`` reads it)."""

    state: str  # as in PluginReport, but "loading" while an operation starts a worker
    loaded: bool  # a load (or start) of it has succeeded
    generation: int  # of its facts: a copy of an older one is stale
    facts: dict[str, Any] | None  # its metadata and schema, when they were asked for


R = TypeVar("R")


def to_data(value: Any) -> Any:
    """Plain data for a record (or a tuple of records), ready for msgpack and JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_data(getattr(value, field.name))
                for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_data(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def from_data(record: type[R], data: Any) -> R:
    """The ``record`` (a dataclass above, or ``Health``) that ``data`` holds."""
    value: R = _read(record, data, record.__name__)
    return value


def plugin_entries(data: Any) -> dict[str, PluginEntry]:
    """The ``plugins`` answer: plugin id → its entry."""
    if not isinstance(data, dict):
        raise ProtocolError("the plugins answer must be a map")
    return {str(plugin_id): _read(PluginEntry, entry, f"plugins[{plugin_id!r}]")
            for plugin_id, entry in data.items()}


def _read(hint: Any, value: Any, where: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProtocolError(f"{where} must be a map")
        for name, _ in _fields(hint):
            if name not in value:
                raise ProtocolError(f"{where}.{name} is missing")
        return hint(**{name: _read(inner, value[name], f"{where}.{name}")
                       for name, inner in _fields(hint)})
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is UnionType or origin is typing.Union:  # X | None
        (inner,) = (arg for arg in args if arg is not NoneType)
        return None if value is None else _read(inner, value, where)
    if origin is tuple:  # tuple[X, ...]
        if not isinstance(value, list | tuple):
            raise ProtocolError(f"{where} must be a list")
        return tuple(_read(args[0], item, f"{where}[{index}]")
                     for index, item in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise ProtocolError(f"{where}: {value!r} is not a {hint.__name__}") from None
    if not _IS[origin or hint](value):
        raise ProtocolError(f"{where} must be {getattr(origin or hint, '__name__', hint)}")
    return value


@functools.cache
def _fields(record: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(record)
    return tuple((field.name, hints[field.name]) for field in dataclasses.fields(record))


_IS: dict[Any, Callable[[Any], bool]] = {  # bool is an int to Python, never to a reader
    Any: lambda value: True,
    str: lambda value: isinstance(value, str),
    bool: lambda value: isinstance(value, bool),
    int: lambda value: isinstance(value, int) and not isinstance(value, bool),
    float: lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    dict: lambda value: isinstance(value, dict),
}
