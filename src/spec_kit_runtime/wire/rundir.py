"""The supervisor's private runtime directory: sockets, client token, lock and address.

The directory is created 0700 and must be owned by us; a directory anyone else could
write to is refused rather than "fixed". Clients find a running supervisor (and the CURVE
key of a tcp:// endpoint) through the ``supervisor.json`` file in it, and prove themselves
with the 0600 ``token`` file.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import ConfigError, SupervisorUnavailable

TOKEN_BYTES = 32


def default_runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/spec-kit-runtime``, else ``/tmp/spec-kit-runtime-UID``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "spec-kit-runtime"
    return Path(tempfile.gettempdir()) / f"spec-kit-runtime-{os.getuid()}"


@dataclass(frozen=True)
class RuntimeDir:
    """A verified private directory and the files the supervisor keeps in it."""

    path: Path

    @classmethod
    def prepare(cls, path: Path) -> RuntimeDir:
        """Create (0700) or verify the directory; refuse one that is not private and ours.

        The path is made absolute: the endpoints written into ``supervisor.json`` must work
        for clients started from any directory.
        """
        return cls(private_directory(path.absolute(), "runtime directory"))

    @property
    def workers_endpoint(self) -> str:
        return f"ipc://{self.path / 'workers.sock'}"

    def share_workers_socket(self) -> None:
        """Let workers that run as another uid connect to their (bound) socket.

        They reach it through a file descriptor opened before their uid drop, never by its
        path: the directory stays 0700, so for every other process the socket is out of
        reach whatever its own mode.
        """
        os.chmod(self.path / "workers.sock", 0o666)

    @property
    def clients_endpoint(self) -> str:
        return f"ipc://{self.path / 'clients.sock'}"

    @property
    def control_endpoint(self) -> str:
        """Control operations only, read first by the supervisor (always ipc: local)."""
        return f"ipc://{self.path / 'control.sock'}"

    @property
    def address_file(self) -> Path:
        return self.path / "supervisor.json"

    @property
    def token_file(self) -> Path:
        return self.path / "token"

    def lock(self) -> int:
        """Hold the directory's lock for the life of the process; fails if a supervisor has it."""
        fd = os.open(self.path / "supervisor.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self.read_address().get("pid", "?") if self.address_file.exists() else "?"
            raise ConfigError(
                f"a supervisor (pid {pid}) already runs with runtime directory {self.path}"
            ) from None
        return fd

    def new_token(self) -> bytes:
        """A fresh client token, written 0600."""
        token = secrets.token_bytes(TOKEN_BYTES)
        write_private(self.token_file, token)
        return token

    def read_token(self) -> bytes:
        return _read_trusted(self.token_file, "the client token")

    def write_address(self, endpoint: str, pid: int, control: str,
                      server_key: str | None = None) -> None:
        """Tell clients where the running supervisor listens, and for a tcp:// endpoint
        its CURVE public key (in this 0600 file only: who cannot read it cannot even
        complete a handshake, let alone reach the token check)."""
        address: dict[str, Any] = {"endpoint": endpoint, "pid": pid, "control": control}
        if server_key is not None:
            address["server_key"] = server_key
        write_private(self.address_file, json.dumps(address).encode())

    def read_address(self) -> dict[str, Any]:
        """Where the supervisor listens. Only a folder and file of our own, private, are
        believed: one another user made (``/tmp/spec-kit-runtime-UID`` before we did, say)
        could point a client at a supervisor of theirs, which would then be handed our
        plugins' configs and serve our handlers."""
        try:
            data = json.loads(_read_trusted(self.address_file, "the supervisor's address"))
        except ValueError as exc:
            raise SupervisorUnavailable(
                f"no running supervisor found in {self.path} ({exc})"
            ) from None
        if (not isinstance(data, dict) or not isinstance(data.get("endpoint"), str)
                or not isinstance(data.get("server_key", ""), str)):
            raise SupervisorUnavailable(f"malformed {self.address_file}")
        return data

    def remove_address(self) -> None:
        for file in (self.address_file, self.token_file):
            file.unlink(missing_ok=True)


_MAX_TRUSTED_BYTES = 64 * 1024


def private_problem(info: os.stat_result, directory: bool = True) -> str | None:
    """Why what ``info`` describes (from an lstat or fstat) is not a private directory (or
    regular file) of ours, or None: the test every runtime, data and private folder, and the
    files clients read from them, must pass."""
    kind, is_kind = (("a directory", stat.S_ISDIR) if directory
                     else ("a regular file", stat.S_ISREG))
    if not is_kind(info.st_mode):
        return f"is not {kind}"
    if info.st_uid != os.getuid():
        return f"is owned by uid {info.st_uid}, not us"
    if stat.S_IMODE(info.st_mode) & 0o077:
        return f"has mode {stat.S_IMODE(info.st_mode):o}; it must be private"
    return None


def _read_trusted(path: Path, what: str) -> bytes:
    """The bytes of ``path`` if it and its folder are ours and private (no symbolic link,
    no group or other access); SupervisorUnavailable saying why not otherwise."""
    try:
        folder = path.parent.lstat()
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SupervisorUnavailable(
            f"no running supervisor found in {path.parent} ({what}: {exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        for name, problem in ((path.parent, private_problem(folder)),
                              (path, private_problem(os.fstat(handle.fileno()), False))):
            if problem:
                raise SupervisorUnavailable(
                    f"{name} {problem}: not trusted to say where our supervisor is")
        return handle.read(_MAX_TRUSTED_BYTES)


def private_directory(path: Path, what: str) -> Path:
    """Create ``path`` (0700, parents too) or verify it: a directory, ours, and private; one
    anyone else could write to is refused rather than "fixed". ConfigError names ``what``."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    problem = private_problem(info)
    if problem:
        raise ConfigError(f"{what} {path} {problem}")
    return path


def write_private(path: Path, data: bytes, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically (a 0600 file renamed over it): a reader
    sees the old content or the new, never half. ``durable``: on disk before it returns."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        if durable:
            file.flush()
            os.fsync(file.fileno())
    os.replace(tmp, path)
    if durable:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
