"""Runtime configuration: defaults, and the YAML file that overrides them.

Relative plugin paths are resolved against the config file's folder, so a config works
from any working directory. Unknown keys are refused: a typo must not silently fall back
to a default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.logs.formats import FORMATS
from spec_kit_runtime.policy.confinement import Confinement, confinement_from_data
from spec_kit_runtime.policy.file_roots import Root
from spec_kit_runtime.policy.limits import Limits, limits_from_data
from spec_kit_runtime.policy.patterns import pattern_problem
from spec_kit_runtime.policy.restart import RestartPolicy, Strategy, policy_from_data

from .manifest_fields import START_METHODS
from .security import is_valid_plugin_id

MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class PluginSettings:
    """Per-plugin settings: whether ``run`` starts it, its ``initialize`` config, restarts,
    limits, the folders its IFileSystemService reaches besides its data folder, and its
    worker's confinement."""

    enabled: bool = True
    config: dict[str, Any] = field(default_factory=dict)
    restart: dict[str, Any] = field(default_factory=dict)  # overrides of runtime.restart
    limits: dict[str, Any] = field(default_factory=dict)  # overrides of runtime.limits
    filesystem: tuple[Root, ...] = ()  # resolved, existing folders
    hardening: dict[str, Any] = field(default_factory=dict)  # overrides of runtime.hardening
    grant: tuple[str, ...] = ()  # patterns the operator allows it to ask for (grants.py)


@dataclass(frozen=True)
class RuntimeConfig:
    """Every knob of the supervisor, with its default."""

    plugin_paths: tuple[Path, ...] = ()
    runtime_dir: Path | None = None  # None: rundir.default_runtime_dir()
    data_dir: Path | None = None  # None: plugin_data.default_data_dir() (see plugin_data.py)
    endpoint: str | None = None  # None: ipc socket in runtime_dir; or tcp://127.0.0.1:PORT, CURVE
    request_timeout: float = 30.0  # seconds, when a Request carries no timeout of its own
    start_timeout: float = 10.0  # spawn until the worker's Hello
    phase_timeout: float = 30.0  # each lifecycle phase (load, initialize, activate, ...)
    stop_timeout: float = 5.0  # orderly stop before SIGTERM, then again before SIGKILL
    call_grace: float = 5.0  # a worker still in a call this long past its deadline is killed
    wait_for_ready: bool = True  # a call to a restarting plugin waits (see ready_waits)
    ready_queue: int = 1000  # calls that may wait for one plugin at once; more fail at once
    heartbeat_interval: float = 5.0  # seconds between heartbeats to each worker
    heartbeat_misses: int = 6  # unanswered in a row: the worker is unresponsive, killed
    watchdog_interval: float = 1.0  # seconds between samples of every worker's usage
    max_message_bytes: int = 16 * 1024 * 1024
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one object per line (see logs.py)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    limits: Limits = field(default_factory=Limits)
    strategy: Strategy = Strategy.ONE_FOR_ONE  # see Strategy
    start_method: str = "fork"  # fork: from the pre-imported fork server; spawn: a fresh python
    cgroups: bool = False  # a cgroup per worker where the machine allows it (see cgroups.py)
    hardening: Confinement = field(default_factory=Confinement)  # see confinement.py
    http: tuple[str, int] | None = None  # (loopback host, port) of /healthz ... ; None: off
    state_max_bytes: int = 4 * 1024 * 1024  # IStateService, per plugin
    plugins: dict[str, PluginSettings] = field(default_factory=dict)

    def settings_for(self, plugin_id: str) -> PluginSettings:
        return self.plugins.get(plugin_id, PluginSettings())

    def limits_for(self, plugin_id: str) -> Limits:
        """Runtime default limits with the plugin's own overrides applied."""
        return _limits(self.settings_for(plugin_id).limits, self.limits,
                       f"plugins.{plugin_id}.limits")

    def hardening_for(self, plugin_id: str) -> Confinement:
        """Runtime default confinement with the plugin's own overrides applied."""
        return _hardening(self.settings_for(plugin_id).hardening, self.hardening,
                          f"plugins.{plugin_id}.hardening")

    def restart_policy_for(self, plugin_id: str, manifest: Mapping[str, Any] | None = None
                           ) -> RestartPolicy:
        """Runtime defaults, then the manifest's ``restart``, then this config's overrides."""
        policy = restart_policy(dict(manifest or {}), self.restart,
                                f"{plugin_id}: manifest restart")
        overrides = self.settings_for(plugin_id).restart
        return restart_policy(overrides, policy, f"plugins.{plugin_id}.restart")


_NUMBERS = {"request_timeout", "start_timeout", "phase_timeout", "stop_timeout",
            "call_grace", "heartbeat_interval", "watchdog_interval"}


_LOOPBACK = ("127.0.0.1", "localhost")  # IPv4: the HTTP server binds IPv4 only


def _http_address(value: Any, where: str) -> tuple[str, int] | None:
    """``HOST:PORT`` on loopback (port 0: any free port), or null for off."""
    if value is None:
        return None
    host, _, port = str(value).rpartition(":") if isinstance(value, str) else ("", "", "")
    host = host.strip("[]")
    if host not in _LOOPBACK or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{where} must be null (off) or HOST:PORT with HOST one of "
                          f"{', '.join(_LOOPBACK)} (loopback only)")
    return host, int(port)


def _endpoint(value: Any, where: str) -> str:
    """``ipc://PATH``, or ``tcp://127.0.0.1:PORT`` (port 0: any free port), served with
    CURVE. Loopback only: a token holder may load and run plugins, and libzmq bounds neither
    the connections nor the handshakes a listening socket takes (see SECURITY.md)."""
    if isinstance(value, str):
        if value.startswith("ipc://") and value != "ipc://":
            return value
        port = value.removeprefix(_TCP_PREFIX)
        if (value.startswith(_TCP_PREFIX) and port.isascii() and port.isdigit()
                and int(port) <= 65535):
            return value
    raise ConfigError(f"{where} must be ipc://PATH or tcp://127.0.0.1:PORT (loopback only, "
                      "encrypted with CURVE; port 0: any free port)")


_TCP_PREFIX = "tcp://127.0.0.1:"


_CHOICES = {
    "strategy": tuple(Strategy),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "start_method": START_METHODS,
    "log_format": FORMATS,
}


def load_config(path: Path) -> RuntimeConfig:
    """Read and validate a YAML config file (a ``.json`` one as JSON: what a container
    writes for its private supervisor, which then need not import PyYAML, 10 ms of its
    start); ConfigError names the file and the key."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text) or {}
        except ValueError as exc:
            raise ConfigError(f"{path}: malformed JSON: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    return config_from_data(data, path)


def config_from_data(data: Any, source: Path) -> RuntimeConfig:
    """Validate plain config data (as read from ``source``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping")
    unknown = set(data) - {"runtime", "plugins"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level keys {sorted(map(str, unknown))}")
    runtime = data.get("runtime") or {}
    if not isinstance(runtime, dict):
        raise ConfigError(f"{source}: 'runtime' must be a mapping")
    known = {f.name for f in fields(RuntimeConfig)} - {"plugins"}
    values: dict[str, Any] = {}
    for key, value in runtime.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key 'runtime.{key}'")
        values[key] = _runtime_value(source, key, value)
    values["plugins"] = _plugins(source, data.get("plugins") or {})
    return RuntimeConfig(**values)


def _runtime_value(source: Path, key: str, value: Any) -> Any:
    where = f"{source}: 'runtime.{key}'"
    base = source.parent
    if key == "plugin_paths":
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise ConfigError(f"{where} must be a list of paths")
        return tuple((base / p).resolve() for p in value)
    if key in ("runtime_dir", "data_dir"):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a path")
        return (base / value).resolve()
    if key in _NUMBERS:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value <= 0):  # NaN once stalled every timer
            raise ConfigError(f"{where} must be a positive number of seconds")
        return float(value)
    if key == "http":
        return _http_address(value, where)
    if key in ("cgroups", "wait_for_ready"):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if key in ("heartbeat_misses", "ready_queue"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where} must be an integer of at least 1")
        return value
    if key in ("max_message_bytes", "state_max_bytes"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
            raise ConfigError(f"{where} must be an integer of at least 1024")
        return value
    if key == "endpoint":
        return _endpoint(value, where)
    if key == "restart":
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping")
        return restart_policy(value, RestartPolicy(), f"{source}: 'runtime.restart'")
    if key == "limits":
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping")
        return _limits(value, Limits(), f"{source}: 'runtime.limits'")
    if key == "hardening":
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping")
        return _hardening(value, Confinement(), f"{source}: 'runtime.hardening'")
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            *others, last = _CHOICES[key]
            raise ConfigError(f"{where} must be {', '.join(others)} or {last}")
        return Strategy(value) if key == "strategy" else value
    raise ConfigError(f"{where} is not supported")  # pragma: no cover - guarded by `known`


_PLUGIN_KEYS = ("enabled", "config", "restart", "limits", "filesystem", "hardening", "grant")


def _plugins(source: Path, data: Any) -> dict[str, PluginSettings]:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: 'plugins' must be a mapping of plugin id to settings")
    settings: dict[str, PluginSettings] = {}
    for plugin_id, entry in data.items():
        where = f"{source}: 'plugins.{plugin_id}'"
        if not is_valid_plugin_id(plugin_id):
            raise ConfigError(f"{where}: not a valid plugin id")
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - set(_PLUGIN_KEYS):
            raise ConfigError(f"{where} may only hold {', '.join(map(repr, _PLUGIN_KEYS))}")
        enabled = entry.get("enabled", True)
        config = entry.get("config") or {}
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}.enabled must be true or false")
        if not isinstance(config, dict):
            raise ConfigError(f"{where}.config must be a mapping")
        restart = entry.get("restart") or {}
        if not isinstance(restart, dict):
            raise ConfigError(f"{where}.restart must be a mapping")
        restart_policy(restart, RestartPolicy(), f"{source}: 'plugins.{plugin_id}.restart'")
        limits = entry.get("limits") or {}
        if not isinstance(limits, dict):
            raise ConfigError(f"{where}.limits must be a mapping")
        _limits(limits, Limits(), f"{source}: 'plugins.{plugin_id}.limits'")
        roots = _roots(entry.get("filesystem") or [], source.parent, f"{where}.filesystem")
        hardening = entry.get("hardening") or {}
        if not isinstance(hardening, dict):
            raise ConfigError(f"{where}.hardening must be a mapping")
        _hardening(hardening, Confinement(), f"{source}: 'plugins.{plugin_id}.hardening'")
        grant = entry.get("grant")
        grant = [] if grant is None else grant
        if not isinstance(grant, list):
            raise ConfigError(f"{where}.grant must be a list of message patterns")
        for index, pattern in enumerate(grant):
            problem = pattern_problem(pattern)
            if problem:
                raise ConfigError(f"{where}.grant item {index}: {problem}")
        settings[plugin_id] = PluginSettings(enabled=enabled, config=config, restart=restart,
                                             limits=limits, filesystem=roots,
                                             hardening=hardening, grant=tuple(grant))
    return settings


def _roots(data: Any, base: Path, where: str) -> tuple[Root, ...]:
    """``[{path, writable}]``: existing folders (relative to the config file), each resolved
    now, symbolic links and all, so that what a root means cannot change later."""
    if not isinstance(data, list):
        raise ConfigError(f"{where} must be a list of {{path, writable}} mappings")
    roots: list[Root] = []
    for index, item in enumerate(data):
        at = f"{where}[{index}]"
        if not isinstance(item, dict) or "path" not in item or set(item) - {"path", "writable"}:
            raise ConfigError(f"{at} must be a mapping with 'path' and optionally 'writable'")
        path, writable = item["path"], item.get("writable", False)
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{at}.path must be a path")
        if not isinstance(writable, bool):
            raise ConfigError(f"{at}.writable must be true or false")
        try:
            real = (base / path).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ConfigError(f"{at}.path {path!r} cannot be used: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        if not real.is_dir():
            raise ConfigError(f"{at}.path {path!r} is not a folder")
        for other in roots:  # a read-only folder inside a writable one would be writable
            if other.writable != writable and (other.holds(str(real)) or
                                               Root(str(real), writable).holds(other.path)):
                raise ConfigError(f"{at}.path {path!r} nests with {other.path}, one writable "
                                  "and one not: make both the same, or keep them apart")
        roots.append(Root(str(real), writable))
    return tuple(roots)



def restart_policy(data: dict[str, Any], base: RestartPolicy, where: str) -> RestartPolicy:
    """``base`` with ``data`` applied; ConfigError names where the bad setting is."""
    try:
        return policy_from_data(data, base)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _limits(data: dict[str, Any], base: Limits, where: str) -> Limits:
    try:
        return limits_from_data(data, base)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _hardening(data: dict[str, Any], base: Confinement, where: str) -> Confinement:
    try:
        return confinement_from_data(data, base)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
