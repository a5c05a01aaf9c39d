"""The one exception tree of spec-kit-runtime, and its wire form.

Every error a caller can see is a ``RuntimeFailure``. It subclasses the contracts'
``PluginContractError`` so that 1.0 code catching that keeps working. Errors cross
process boundaries as plain dicts (``to_data`` / ``from_data``): the class is named by a
stable ``code``, and a plugin's traceback travels along as text and comes back as the
``__cause__`` of the raised error, like CPython's ``_RemoteTraceback``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from spec_kit_contracts import MessageContractError, PluginContractError, ServiceContractError


class RuntimeFailure(PluginContractError):  # type: ignore[misc]
    """Base of every error raised by spec-kit-runtime."""

    code: ClassVar[str] = "runtime"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}

    @property
    def plugin(self) -> str | None:
        """Id of the plugin the error is about, when there is one."""
        value = self.context.get("plugin")
        return value if isinstance(value, str) else None

    def to_data(self) -> dict[str, Any]:
        """Plain-data form sent over the wire."""
        return {"code": self.code, "message": self.message, "context": dict(self.context)}


class ManifestError(RuntimeFailure):
    """A plugin manifest is missing, malformed or invalid; names the file and the field."""

    code = "manifest"

    def __init__(self, file: str, field: str | None, reason: str) -> None:
        where = f"{file}: field '{field}'" if field else file
        super().__init__(f"{where}: {reason}", file=file, field=field, reason=reason)

    @property
    def file(self) -> str:
        return str(self.context["file"])

    @property
    def field(self) -> str | None:
        value = self.context.get("field")
        return value if isinstance(value, str) else None


class ConfigError(RuntimeFailure):
    """The runtime configuration file or a value in it is invalid."""

    code = "config"


class ProtocolError(RuntimeFailure):
    """A frame or record that does not follow the wire protocol."""

    code = "protocol"


class EncodeError(ProtocolError):
    """A value cannot be carried over the wire (names the offending type and where)."""

    code = "encode"


class RoutingError(RuntimeFailure, MessageContractError):  # type: ignore[misc]
    """A message could not be delivered."""

    code = "routing"


class ScopeError(RoutingError):
    """A plugin tried to send or subscribe outside its scope."""

    code = "scope"


class NoHandlerError(RoutingError):
    """No plugin handles the message's address."""

    code = "no_handler"


class PluginNotActiveError(RoutingError):
    """The plugin that handles the address exists but is not active."""

    code = "not_active"


class PluginStateError(RuntimeFailure):
    """A lifecycle operation asked of a plugin in the wrong state (or an unknown plugin)."""

    code = "state"


class LifecycleError(RuntimeFailure):
    """A plugin's lifecycle phase (load, initialize, activate, ...) failed inside its worker."""

    code = "lifecycle"


class RequirementError(LifecycleError):
    """A package the plugin's manifest requires (a PEP 508 entry of ``dependencies``) is not
    installed where the workers run, or not in a version it accepts: the plugin is not
    started. Names the plugin, each unmet requirement and what is installed."""

    code = "requirement"

    @property
    def unmet(self) -> list[str]:
        """Each unmet requirement with what is installed, as in the message."""
        value = self.context.get("unmet")
        return [str(v) for v in value] if isinstance(value, list) else []


class SandboxViolation(LifecycleError):
    """Plugin source, an import it attempted or a call it made breaks the sandbox's rules."""

    code = "sandbox"

    @property
    def violations(self) -> list[str]:
        """Each violation as ``file:line: what``."""
        value = self.context.get("violations")
        return [str(v) for v in value] if isinstance(value, list) else []


class SandboxImportError(SandboxViolation, ImportError):
    """An import refused by the sandbox; still an ImportError, so ``except ImportError`` works."""


class HandlerError(RuntimeFailure):
    """A plugin's handler raised; the remote traceback is the ``__cause__``."""

    code = "handler"


class WorkerDiedError(RuntimeFailure):
    """The worker process running the plugin exited while the request was in flight."""

    code = "worker_died"


class DeadlineExceeded(RuntimeFailure, TimeoutError):
    """No reply came before the request's deadline."""

    code = "deadline"


class SupervisorUnavailable(RuntimeFailure):
    """No supervisor could be started or reached."""

    code = "unavailable"


class AuthenticationError(RuntimeFailure):
    """A peer failed to prove who it is."""

    code = "auth"


class ServiceError(RuntimeFailure, ServiceContractError):  # type: ignore[misc]
    """A host service refused a call: unknown service or method, bad arguments, a quota."""

    code = "service"


class ServiceFileError(ServiceError, OSError):
    """IFileSystemService could not do it (not a directory, not UTF-8, too large, ...); an
    ``OSError``, so 1.0 code catching that keeps working."""

    code = "file"


class PathRefusedError(ServiceFileError, PermissionError):
    """A path leads outside the plugin's file system roots (``..``, an absolute path
    elsewhere, a symbolic link out), or asks to write in a read-only root."""

    code = "path_refused"


class ServiceFileNotFoundError(ServiceFileError, FileNotFoundError):
    """The file or folder does not exist (IFileSystemService says FileNotFoundError)."""

    code = "not_found"


class RemoteTraceback(Exception):
    """Carries a traceback formatted in another process, shown as the cause."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


_BY_CODE: dict[str, type[RuntimeFailure]] = {}


def _register(*classes: type[RuntimeFailure]) -> None:
    for cls in classes:
        _BY_CODE[cls.code] = cls


_register(
    RuntimeFailure, ConfigError, ProtocolError, EncodeError, RoutingError, ScopeError,
    NoHandlerError, PluginNotActiveError, PluginStateError, LifecycleError, HandlerError,
    WorkerDiedError, DeadlineExceeded, SupervisorUnavailable, AuthenticationError,
    ServiceError, ServiceFileError, PathRefusedError, ServiceFileNotFoundError,
    SandboxViolation, RequirementError,
)


def from_data(data: Any) -> RuntimeFailure:
    """Rebuild an error from its wire form; unknown or malformed forms become RuntimeFailure."""
    if not isinstance(data, dict):
        return ProtocolError(f"malformed error reply: {data!r:.200}")
    message = str(data.get("message", "unknown error"))
    raw_context = data.get("context")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    code = data.get("code")
    if code == ManifestError.code:
        return ManifestError(
            str(context.get("file", "?")), context.get("field"), str(context.get("reason", message))
        )
    cls = _BY_CODE.get(code, RuntimeFailure) if isinstance(code, str) else RuntimeFailure
    error = cls(message, **{str(k): v for k, v in context.items()})
    traceback_text = context.get("traceback")
    if isinstance(traceback_text, str) and traceback_text:
        error.__cause__ = RemoteTraceback(traceback_text)
    return error
