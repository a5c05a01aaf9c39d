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
    from .client import SupervisorClient
    from .config import (
        PluginSettings,
        RuntimeConfig,
        load_config,
    )
    from .container import PluginContainer
    from .discovery import (
        DiscoveryResult,
        discover,
    )
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
    from .manifest import (
        PluginInfo,
        read_manifest,
    )
    from .message_bus import (
        DeliveryMode,
        MessageBus,
        ScopedMessageBus,
    )
    from .sandbox import PluginSandbox
    from .security import (
        InputValidationError,
        PathTraversalError,
        SecurityError,
        sanitize_plugin_id,
        validate_path,
        validate_plugin_path,
    )
    from .service_provider import ServiceProvider

# Where each public name lives. Imported on first use (PEP 562), so that a worker process,
# which needs only the codec, does not pay for the client, the config loader or yaml.
_HOME = {
    "__version__": "._version",
    "SupervisorClient": ".client",
    "PluginSettings": ".config",
    "RuntimeConfig": ".config",
    "load_config": ".config",
    "PluginContainer": ".container",
    "DiscoveryResult": ".discovery",
    "discover": ".discovery",
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
    "PluginInfo": ".manifest",
    "read_manifest": ".manifest",
    "DeliveryMode": ".message_bus",
    "MessageBus": ".message_bus",
    "ScopedMessageBus": ".message_bus",
    "PluginSandbox": ".sandbox",
    "SandboxImportError": ".errors",
    "SandboxViolation": ".errors",
    "InputValidationError": ".security",
    "PathTraversalError": ".security",
    "SecurityError": ".security",
    "sanitize_plugin_id": ".security",
    "validate_path": ".security",
    "validate_plugin_path": ".security",
    "ServiceProvider": ".service_provider",
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
