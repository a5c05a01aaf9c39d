"""The plugins' compiled code, kept by the fork server so that a restart skips ``compile``
(about 2 ms of a 12 ms restart: plugins load from source, without bytecode).

Who compiles, and why so: plugin source is never compiled by an unconfined process (the
fork server, an idle spare), since a compiler bug would then be a confinement bypass. The
first worker of a plugin compiles it, confined, as before; right after ``compile`` and
before any of the plugin's code runs, it sends ``marshal.dumps(code)`` and the source
file's identity (``Key``) to the fork server over its return channel (``channel``), and
closes that channel. Nothing of the plugin has run then, so the bytes are as trustworthy as
the plugin's own source; once closed, plugin code can never send on it.

The fork server never unmarshals: it keeps the opaque bytes in ``_entries`` under the
plugin id and file that IT gave that worker (never a name from the message), capped
(``MAX_ENTRY_BYTES``, ``MAX_TOTAL_BYTES``). Every child it forks later (spares too)
inherits ``_entries`` by the fork itself: nothing is sent at hand-over. A later worker of
the same plugin fstats the file it opened; if the entry's key is equal, it unmarshals the
entry instead of compiling (``CachingLoader``). One plugin's worker can fill only its own
plugin's entry, so garbage in an entry (a worker compromised by its own source, before
any plugin code ran) reaches only that plugin's later workers, confined as it was.

Only single-file, non-sandboxed plugins use it (``loader._import_alone``); a worker started
in a fresh interpreter has no channel and an empty cache.
"""

from __future__ import annotations

import io
import marshal
import os
import socket
import struct
import types
from importlib.machinery import SourceFileLoader
from pathlib import Path

from spec_kit_runtime.logs.timeline import mark

Key = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns of the source file
Name = tuple[str, str]  # plugin id, plugin file (as ``str(Path(file))``)
MAX_ENTRY_BYTES = 256 * 1024  # a larger plugin's code is not kept
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # the fork server's memory for all of them
_HEADER = struct.Struct("<QQQq")  # the key; then the marshalled code
MAX_MESSAGE_BYTES = _HEADER.size + MAX_ENTRY_BYTES

_entries: dict[Name, tuple[Key, bytes]] = {}
_total = 0  # bytes of code in _entries


def key_of(status: os.stat_result) -> Key:
    """What identifies one version of a source file: an edit changes the size or the
    mtime (nanoseconds), a replacement by rename the inode."""
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def name_of(plugin_id: str, plugin_file: str | os.PathLike[str]) -> Name:
    """The entry's name, spelled the same by the fork server (from the bootstrap) and the
    worker (from the path it loads)."""
    return plugin_id, str(Path(plugin_file))


def channel() -> tuple[socket.socket, socket.socket]:
    """A return channel (the fork server's end, the worker's end), both close-on-exec. The
    worker's send buffer holds the largest message in one packet, so it never blocks."""
    ours, its = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        its.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE_BYTES + 4096)
    except OSError:
        ours.close()
        its.close()
        raise
    return ours, its


# -- the fork server's side ----------------------------------------------------------------

def store(name: Name, message: bytes) -> bool:
    """Keep the code in ``message`` (from the return channel of ``name``'s worker) for
    later workers; False if it is malformed or does not fit the caps (then nothing is
    kept for ``name``: an older entry is of an older version anyway)."""
    global _total
    old = _entries.pop(name, None)
    if old is not None:
        _total -= len(old[1])
    if not isinstance(message, bytes) or not _HEADER.size < len(message) <= MAX_MESSAGE_BYTES:
        return False
    code = message[_HEADER.size:]
    if _total + len(code) > MAX_TOTAL_BYTES:
        return False
    dev, ino, size, mtime_ns = _HEADER.unpack_from(message)
    _entries[name] = (dev, ino, size, mtime_ns), code
    _total += len(code)
    return True


# -- the worker's side ---------------------------------------------------------------------

def lookup(name: Name, key: Key) -> bytes | None:
    """The code kept for ``name`` if it was compiled from the file version ``key``."""
    entry = _entries.get(name)
    return entry[1] if entry is not None and entry[0] == key else None


def offer(back: socket.socket, key: Key, code: types.CodeType) -> bool:
    """Send ``code`` of the source version ``key`` to the fork server (never blocking; a
    code too large is not sent). Call only before any of the plugin's code has run."""
    data = marshal.dumps(code)
    if len(data) > MAX_ENTRY_BYTES:
        return False
    try:
        back.send(_HEADER.pack(*key) + data, socket.MSG_DONTWAIT)
    except (OSError, struct.error):
        return False
    return True


class CachingLoader(SourceFileLoader):
    """CPython's source loader (the module looks as when imported by it: ``__file__``,
    ``__spec__``, ``co_filename``), but the code of an unchanged file comes from the cache,
    and newly compiled code is offered back. Its return channel is closed before
    ``get_code`` returns, so before the module runs."""

    def __init__(self, fullname: str, path: str, name: Name, back: socket.socket | None) -> None:
        super().__init__(fullname, path)
        self._name = name
        self._back = back
        self._key: Key | None = None  # of the source as read (get_data)

    def get_code(self, fullname: str) -> types.CodeType | None:
        try:
            return super().get_code(fullname)
        finally:
            self.close()

    def get_data(self, path: str) -> bytes:
        """The file's bytes; for the source, its key too, from the very fd it is read from."""
        if path != self.path:
            return super().get_data(path)
        with io.open_code(path) as file:
            self._key = key_of(os.fstat(file.fileno()))
            return file.read()

    def source_to_code(self, data: bytes | str, path: str,  # type: ignore[override]
                       *, _optimize: int = -1) -> types.CodeType:
        if self._key is not None and path == self.path:
            cached = self._cached(self._key)
            if cached is not None:
                mark("code-cached")
                return cached
        code = super().source_to_code(data, path, _optimize=_optimize)  # compile(dont_inherit)
        if self._back is not None and self._key is not None and path == self.path:
            offer(self._back, self._key, code)
        return code

    def _cached(self, key: Key) -> types.CodeType | None:
        data = lookup(self._name, key)
        if data is None:
            return None
        try:
            code = marshal.loads(data)
        except Exception:  # not what a worker of this plugin compiled: compile it again
            return None
        if not isinstance(code, types.CodeType) or code.co_filename != self.path:
            return None
        return code

    def close(self) -> None:
        """Close the return channel, for good (idempotent)."""
        back, self._back = self._back, None
        if back is not None:
            back.close()
