"""spec-kit-runtime: run Spec-Kit plugins, each in its own supervised worker process.

The 1.0 API is the front door: ``PluginContainer`` (backed by a supervisor process),
``ScopedMessageBus`` (in-process, for handlers living in the caller), ``ServiceProvider``,
``PluginSandbox`` and the security helpers. Errors are listed in ``spec_kit_runtime.errors``.
"""

from ._version import __version__
from .client import SupervisorClient
from .config import PluginSettings, RuntimeConfig, load_config
from .container import PluginContainer
from .discovery import DiscoveryResult, discover
from .errors import (
    AuthenticationError,
    ConfigError,
    DeadlineExceeded,
    EncodeError,
    HandlerError,
    LifecycleError,
    ManifestError,
    NoHandlerError,
    PluginNotActiveError,
    PluginStateError,
    ProtocolError,
    RoutingError,
    RuntimeFailure,
    ScopeError,
    SupervisorUnavailable,
    WorkerDiedError,
)
from .manifest import PluginInfo, read_manifest
from .message_bus import DeliveryMode, MessageBus, ScopedMessageBus
from .sandbox import PluginSandbox, SandboxViolation
from .security import (
    InputValidationError,
    PathTraversalError,
    SecurityError,
    sanitize_plugin_id,
    validate_path,
    validate_plugin_path,
)
from .service_provider import ServiceProvider

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
    "PathTraversalError",
    "PluginContainer",
    "PluginInfo",
    "PluginNotActiveError",
    "PluginSandbox",
    "PluginSettings",
    "PluginStateError",
    "ProtocolError",
    "RoutingError",
    "RuntimeConfig",
    "RuntimeFailure",
    "SandboxViolation",
    "ScopeError",
    "ScopedMessageBus",
    "SecurityError",
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
