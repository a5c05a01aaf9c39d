"""What a worker needs to start, sent through an inherited pipe rather than argv or env.

``/proc/PID/cmdline`` and ``/proc/PID/environ`` are readable by other processes of the
same user; an inherited pipe is not, so the per-spawn secret travels here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from spec_kit_runtime.errors import ProtocolError

from .codec import pack_value, unpack_value

MAX_BOOTSTRAP_BYTES = 1 << 20


@dataclass(frozen=True)
class Bootstrap:
    """Everything a worker host is told at spawn."""

    endpoint: str
    plugin_id: str
    secret: bytes
    parent_pid: int  # the fork server: the worker dies with it
    plugin_file: str
    entry_point: str
    sandbox: bool
    scope: tuple[str, ...]
    max_message_bytes: int
    request_timeout: float
    memory_mb: int | None
    cpu_seconds: int | None
    open_files: int | None
    cgroups: tuple[str, ...]  # groups the worker joins first; () without cgroups
    plugin_dir: str  # the plugin's folder: read-only under Landlock
    data_dir: str  # its own data folder (plugin_data.py): the worker's working directory
    landlock: bool  # see confinement.WorkerConfinement
    network: bool
    own_network: bool
    uid: int | None
    gid: int | None

    def pack(self) -> bytes:
        return pack_value(asdict(self))

    @classmethod
    def unpack(cls, data: bytes) -> Bootstrap:
        """The record in ``data``; ProtocolError when it is not one."""
        if len(data) > MAX_BOOTSTRAP_BYTES:
            raise ProtocolError("bootstrap record too large")
        fields = unpack_value(data)
        if not isinstance(fields, dict):
            raise ProtocolError("bootstrap record is not a map")
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ProtocolError(f"bootstrap record: {exc}") from None

    @classmethod
    def read_from(cls, fd: int) -> Bootstrap:
        """Read the record from ``fd`` until EOF and close it."""
        with os.fdopen(fd, "rb") as pipe:
            return cls.unpack(pipe.read(MAX_BOOTSTRAP_BYTES + 1))
