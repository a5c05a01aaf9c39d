"""The fork server's store of its plugins' compiled code: one sealed memfd's fd per plugin
id and file (``loop.code_memfd``), never its contents.

The fork server never reads them, and never holds them in its memory, which all its
children would inherit: it holds fds, which its children close (``ForkServer._own_fds``),
but for a worker of the same plugin. Each fd is checked as it comes (a memfd, all four
seals, a size within the format's), and kept under the plugin id and file of the bootstrap
the fork server gave the worker that sent it, never a name of the sender's choosing; a
plugin's new code replaces its old one, of any file (that fd closed). So a plugin loaded
later under the same id from another file is never handed the older one's code.

Caps: ``MAX_TOTAL_BYTES`` of memfds and ``MAX_ENTRIES`` fds (the fork server's fd table).
Past either, the least recently used entries are dropped (closed), not the new one: a
plugin that keeps restarting keeps its code, a cache full of plugins long unloaded does not
stop caching. A dropped plugin's next worker compiles, and offers its code again.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

from spec_kit_worker.loop import code_memfd

MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 256


Name = tuple[str, str]  # plugin id, plugin file (the bootstrap's)


class CodeStore:
    """(Plugin id, file) → its code's sealed memfd (fd, size), least recently used first."""

    def __init__(self, max_total: int = MAX_TOTAL_BYTES, max_entries: int = MAX_ENTRIES) -> None:
        self.max_total = max_total
        self.max_entries = max_entries
        self._entries: OrderedDict[Name, tuple[int, int]] = OrderedDict()
        self.total = 0  # bytes of the memfds kept

    def keep(self, name: Name, fd: int) -> bool:
        """Keep ``fd``, just received from a worker of the plugin ``name``, in place of the
        plugin's older code (dropped either way); the fd is ours now: closed if it is not a
        sealed memfd of the right size (False), or when dropped later."""
        self.drop(name[0])
        size = code_memfd.checked_size(fd)
        if size is None:
            os.close(fd)
            return False
        self._entries[name] = (fd, size)
        self.total += size
        # A later worker of this plugin forked directly (no spare ready) hashes its source to
        # check this code: hashlib (OpenSSL, 3-4.5 ms to import) is loaded here, once, so that
        # it inherits it; not at the fork server's start, which a one-shot process waits for.
        import hashlib  # noqa: F401
        while self._entries and (self.total > self.max_total
                                 or len(self._entries) > self.max_entries):
            self._drop(next(iter(self._entries)))
        return name in self._entries

    def fd_of(self, name: Name) -> int | None:
        """The fd of the code of plugin ``name`` (still ours), for a worker of that plugin
        and file; used recently from now on."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        self._entries.move_to_end(name)
        return entry[0]

    def fds(self) -> tuple[int, ...]:
        """All of them: no child keeps any but its own plugin's."""
        return tuple(fd for fd, _ in self._entries.values())

    def drop(self, plugin_id: str) -> None:
        """Drop the code of ``plugin_id``, of whatever file."""
        for name in [name for name in self._entries if name[0] == plugin_id]:
            self._drop(name)

    def _drop(self, name: Name) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            self.total -= entry[1]
            with contextlib.suppress(OSError):
                os.close(entry[0])

    def forget(self) -> None:
        """In a child of the fork server, once its fds are closed (``_become``): not even
        which plugins have code, nor its size, is left to it."""
        self._entries.clear()
        self.total = 0

    def __len__(self) -> int:
        return len(self._entries)
