"""spec-kit-runtime: run Spec-Kit plugins, each in its own supervised worker process.

The 1.0 API is the front door: ``PluginContainer`` (backed by a supervisor process),
``ScopedMessageBus`` (in-process, for handlers living in the caller), ``ServiceProvider``,
``PluginSandbox`` and the security helpers. Errors are listed in ``spec_kit_runtime.errors``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._version import __version__
    from .client.client import SupervisorClient
    from .client.container import PluginContainer
    from .errors import (
        AuthenticationError,
        ConfigError,
        DeadlineExceeded,
        EncodeError,
        HandlerError,
        LifecycleError,
        ManifestError,
        NoHandlerError,
        PathRefusedError,
        PluginNotActiveError,
        PluginStateError,
        ProtocolError,
        RequirementError,
        RoutingError,
        RuntimeFailure,
        SandboxImportError,
        SandboxViolation,
        ScopeError,
        ServiceError,
        ServiceFileError,
        ServiceFileNotFoundError,
        SupervisorUnavailable,
        WorkerDiedError,
    )
    from .inprocess.message_bus import DeliveryMode, MessageBus, ScopedMessageBus
    from .inprocess.service_provider import ServiceProvider
    from .plugins.config import PluginSettings, RuntimeConfig, load_config
    from .plugins.discovery import DiscoveryResult, discover
    from .plugins.manifest import read_manifest
    from .plugins.plugin_info import PluginInfo
    from .plugins.security import (
        InputValidationError,
        PathTraversalError,
        SecurityError,
        sanitize_plugin_id,
        validate_path,
        validate_plugin_path,
    )
    from .sandbox.plugin_sandbox import PluginSandbox

# Where each public name lives. Imported on first use (PEP 562), so that a worker process,
# which needs only the codec, does not pay for the client, the config loader or yaml.
_HOME = {
    "__version__": "._version",
    "SupervisorClient": ".client.client",
    "PluginSettings": ".plugins.config",
    "RuntimeConfig": ".plugins.config",
    "load_config": ".plugins.config",
    "PluginContainer": ".client.container",
    "DiscoveryResult": ".plugins.discovery",
    "discover": ".plugins.discovery",
    "AuthenticationError": ".errors",
    "ConfigError": ".errors",
    "DeadlineExceeded": ".errors",
    "EncodeError": ".errors",
    "HandlerError": ".errors",
    "LifecycleError": ".errors",
    "ManifestError": ".errors",
    "NoHandlerError": ".errors",
    "PathRefusedError": ".errors",
    "PluginNotActiveError": ".errors",
    "PluginStateError": ".errors",
    "ProtocolError": ".errors",
    "RequirementError": ".errors",
    "RoutingError": ".errors",
    "RuntimeFailure": ".errors",
    "ScopeError": ".errors",
    "ServiceError": ".errors",
    "ServiceFileError": ".errors",
    "ServiceFileNotFoundError": ".errors",
    "SupervisorUnavailable": ".errors",
    "WorkerDiedError": ".errors",
    "PluginInfo": ".plugins.plugin_info",
    "read_manifest": ".plugins.manifest",
    "DeliveryMode": ".inprocess.message_bus",
    "MessageBus": ".inprocess.message_bus",
    "ScopedMessageBus": ".inprocess.message_bus",
    "PluginSandbox": ".sandbox.plugin_sandbox",
    "SandboxImportError": ".errors",
    "SandboxViolation": ".errors",
    "InputValidationError": ".plugins.security",
    "PathTraversalError": ".plugins.security",
    "SecurityError": ".plugins.security",
    "sanitize_plugin_id": ".plugins.security",
    "validate_path": ".plugins.security",
    "validate_plugin_path": ".plugins.security",
    "ServiceProvider": ".inprocess.service_provider",
}

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "DeadlineExceeded",
    "DeliveryMode",
    "DiscoveryResult",
    "EncodeError",
    "HandlerError",
    "InputValidationError",
    "LifecycleError",
    "ManifestError",
    "MessageBus",
    "NoHandlerError",
    "PathRefusedError",
    "PathTraversalError",
    "PluginContainer",
    "PluginInfo",
    "PluginNotActiveError",
    "PluginSandbox",
    "PluginSettings",
    "PluginStateError",
    "ProtocolError",
    "RequirementError",
    "RoutingError",
    "RuntimeConfig",
    "RuntimeFailure",
    "SandboxImportError",
    "SandboxViolation",
    "ScopeError",
    "ScopedMessageBus",
    "SecurityError",
    "ServiceError",
    "ServiceFileError",
    "ServiceFileNotFoundError",
    "ServiceProvider",
    "SupervisorClient",
    "SupervisorUnavailable",
    "WorkerDiedError",
    "__version__",
    "discover",
    "load_config",
    "read_manifest",
    "sanitize_plugin_id",
    "validate_path",
    "validate_plugin_path",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'spec_kit_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
