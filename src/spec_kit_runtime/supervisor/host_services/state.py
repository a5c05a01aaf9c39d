"""IStateService: one plugin's key-value state, kept by the supervisor so it outlives workers.

The values live in the supervisor's memory, so a crashed and restarted worker finds them
as it left them; they reach the plugin's file (``DATA_DIR/state/ID.msgpack``, written
atomically, mode 0600, fsynced) on ``persist_state()`` and whenever a worker of the plugin
ends, orderly or not, and when the supervisor stops. Only a supervisor that dies itself
loses what was set since the last of those. Values are what the wire carries (msgpack,
datetime, tuple; never a pickle), kept packed: their total size, keys included, is
bounded by ``max_bytes`` (``runtime.state_max_bytes``). A file that cannot be read is
refused, never silently replaced by an empty state.

Blocking file I/O: the supervisor calls these on its background threads, one plugin's
calls one at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spec_kit_runtime.errors import ProtocolError, ServiceError
from spec_kit_runtime.wire.codec import pack_value, unpack_value
from spec_kit_runtime.wire.rundir import write_private

MAX_KEY = 1024
ENTRY_OVERHEAD = 16  # what an entry costs in the file beyond its key and value
FILE_MARGIN = 1 << 16
FORMAT = 1


class StateStore:
    """One plugin's state and its file; loaded on first use."""

    def __init__(self, file: Path, max_bytes: int,
                 prepare: Callable[[], object] = lambda: None) -> None:
        self.file = file
        self.max_bytes = max_bytes
        self._prepare = prepare  # makes (or checks) the file's folder before a write
        self._values: dict[str, bytes] | None = None  # key → packed value
        self._size = 0
        self._dirty = False

    def get(self, key: str) -> tuple[bool, Any]:
        """Whether ``key`` is set, and its value."""
        values = self._loaded()
        if key not in values:
            return False, None
        return True, unpack_value(values[key])

    def set(self, key: str, value: Any) -> None:
        """Set ``key``; ServiceError when the state would grow past ``max_bytes``."""
        if not key or len(key) > MAX_KEY:
            raise ServiceError(f"a state key is 1 to {MAX_KEY} characters", key=key[:MAX_KEY])
        values = self._loaded()
        packed = pack_value(value)
        old = values.get(key)
        size = self._size - (_cost(key, old) if old is not None else 0) + _cost(key, packed)
        if size > self.max_bytes:
            raise ServiceError(
                f"state '{key}' refused: the plugin's state would be {size} bytes, more than "
                f"its limit of {self.max_bytes} (runtime.state_max_bytes)", key=key)
        values[key] = packed
        self._size, self._dirty = size, True

    def clear(self, key: str | None) -> None:
        """Forget ``key``, or every key when it is None."""
        values = self._loaded()
        if key is None:
            self._dirty = self._dirty or bool(values)
            values.clear()
            self._size = 0
        elif key in values:
            self._size -= _cost(key, values.pop(key))
            self._dirty = True

    def persist(self) -> None:
        """Write the state to its file if it changed since the last write."""
        if not self._dirty or self._values is None:
            return
        self._prepare()
        try:
            write_private(self.file, pack_value({"format": FORMAT, "values": self._values}),
                          durable=True)
        except OSError as exc:
            raise ServiceError(f"state file {self.file} cannot be written: {exc.strerror}",
                               file=str(self.file)) from None
        self._dirty = False

    def _loaded(self) -> dict[str, bytes]:
        if self._values is None:
            self._values = self._read()
            self._size = sum(_cost(k, v) for k, v in self._values.items())
        return self._values

    def _read(self) -> dict[str, bytes]:
        try:
            with self.file.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > self.max_bytes + FILE_MARGIN:
                    raise ServiceError(
                        f"state file {self.file} is {size} bytes, more than "
                        f"runtime.state_max_bytes ({self.max_bytes}) allows", file=str(self.file))
                data = handle.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ServiceError(f"state file {self.file} cannot be read: {exc.strerror}"
                               ) from None
        try:
            content = unpack_value(data)
        except ProtocolError as exc:
            raise self._corrupt(exc.message) from None
        values = content.get("values") if isinstance(content, dict) else None
        if (not isinstance(content, dict) or content.get("format") != FORMAT
                or not isinstance(values, dict)
                or not all(type(k) is str and type(v) is bytes for k, v in values.items())):
            raise self._corrupt("not a state file of this version")
        return values

    def _corrupt(self, why: str) -> ServiceError:
        return ServiceError(f"state file {self.file} is unreadable ({why}); it is left as it "
                            "is: move it away to start afresh", file=str(self.file))


def _cost(key: str, packed: bytes) -> int:
    return len(key.encode()) + len(packed) + ENTRY_OVERHEAD
