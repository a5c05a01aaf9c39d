"""A plugin's compiled code, kept between its workers so that a restart skips ``compile``
(about 2 ms of a 12 ms restart: plugins load from source, without bytecode). The worker's
side: the loader that uses and offers it.

Who compiles, and why so: plugin source is never compiled by an unconfined process (the
fork server, an idle spare), since a compiler bug would then be a confinement bypass. A
worker with no code for its plugin compiles it, confined, as before; if it was the spare
(it has a return channel then: a restart's worker, usually), right after ``compile`` and
before any of the plugin's code runs, it writes ``marshal.dumps(code)`` into a sealed
memfd (``code_memfd``: headed by the sha256 of the source bytes it compiled), sends that
fd to the fork server over its return channel (``channel``, SCM_RIGHTS), and closes both.
Nothing of the plugin has run then, so the code is as trustworthy as the plugin's own
source; sealed, it can be changed by no one; once the channel is closed, plugin code can
never send on it. Anything failing on the way (a code too deep for ``marshal``, too large,
a memfd refused) only means nothing is sent: the load goes on.

The fork server never reads the memfd (``birth.code_store``): it keeps the fd under the
plugin id and file of the bootstrap it gave that worker, and hands it only to the later
workers of that plugin and file (kept through a direct fork, or sent with a spare's
bootstrap); every other
child of the fork server closes it. So a worker holds at most its own plugin's code, and
nothing of another's is in its memory. A later worker reads the source (as it must
anyway), hashes it, and runs the memfd's code only if the hash, the format and the
interpreter's bytecode magic match, and its ``co_filename`` is this file; else it compiles
and offers its own code, which replaces the entry. The memfd's fd is closed before the
module runs (``CachingLoader.get_code``). Garbage in a memfd (a worker compromised by its
own source before any plugin code ran) reaches only that plugin's later workers, confined
as it was.

Only single-file, non-sandboxed plugins use it (``loader._import_alone``); a worker started
in a fresh interpreter has neither a channel nor a memfd.
"""

from __future__ import annotations

import io
import marshal
import os
import socket
import types
from importlib.machinery import SourceFileLoader
from typing import Any

from spec_kit_runtime.logs.timeline import mark

from . import code_memfd

OFFER = b"code"  # the return channel's one packet, with the memfd's fd


def channel() -> tuple[socket.socket, socket.socket]:
    """A return channel (the fork server's end, the worker's end), both close-on-exec."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def digest_of(source: bytes) -> bytes:
    """What identifies one version of a plugin's source: its bytes' sha256 (an edit that
    keeps the size and puts the mtime back changes it all the same). ``hashlib`` is imported
    here, by a worker with code to check or to send only: it loads OpenSSL, 4.5 ms that
    neither the fork server's start nor a cold start's worker should pay (a spare imports
    it as it rehearses)."""
    import hashlib

    return hashlib.sha256(source).digest()


def offer(back: socket.socket, digest: bytes, code: types.CodeType) -> bool:
    """Send ``code``, compiled from the source of sha256 ``digest``, to the fork server in a
    sealed memfd (never blocking). False when nothing was sent: any failure is only a cache
    miss for the next worker. Call only before any of the plugin's code has run."""
    try:
        fd = code_memfd.write(digest, marshal.dumps(code))
    except Exception:  # too deep for marshal (ValueError), too large, no memfd (OSError)
        return False
    try:
        socket.send_fds(back, [OFFER], [fd], socket.MSG_DONTWAIT)
    except OSError:
        return False
    finally:
        os.close(fd)  # the fork server has its own once sent
    return True


def cached_code(fd: int, digest: bytes, path: str) -> types.CodeType | None:
    """The code in the sealed memfd ``fd`` if it was compiled from the source of sha256
    ``digest`` at ``path``, else None (then compile)."""
    data = code_memfd.read(fd, digest)
    if data is None:
        return None
    try:
        code = marshal.loads(data)
    except Exception:  # not what a worker of this plugin compiled: compile it again
        return None
    if not isinstance(code, types.CodeType) or code.co_filename != path:
        return None
    return code


class CachingLoader(SourceFileLoader):
    """CPython's source loader (the module looks as when imported by it: ``__file__``,
    ``__spec__``, ``co_filename``), but the code of an unchanged source comes from the
    memfd ``cached`` (this worker's, if the fork server had one for its plugin; a file
    object, so that closing it twice closes nothing else), and newly
    compiled code is offered back on ``back``. Both are closed before ``get_code``
    returns, so before the module runs."""

    def __init__(self, fullname: str, path: str, back: socket.socket | None,
                 cached: io.FileIO | None = None) -> None:
        super().__init__(fullname, path)
        self._back = back
        self._cached = cached

    def get_code(self, fullname: str) -> types.CodeType | None:
        try:
            return super().get_code(fullname)
        finally:
            self.close()

    def path_stats(self, path: str) -> dict[str, Any]:
        """Refused, so that CPython's loader neither reads a ``__pycache__`` file (its check,
        the source's mtime in seconds and its size, would let stale code past the sha256
        this loader keys on) nor writes one."""
        raise OSError("plugins load from their source or from the code cache, never .pyc")

    def source_to_code(self, data: bytes | str, path: str,  # type: ignore[override]
                       *, _optimize: int = -1) -> types.CodeType:
        # The source's bytes (CPython's loader reads them: get_data), hashed only when there
        # is code to check or to send.
        wanted = self._cached is not None or self._back is not None
        digest = digest_of(data) if wanted and path == self.path and isinstance(data, bytes) \
            else None
        if digest is not None and self._cached is not None:
            cached = self._use_cached(digest)
            if cached is not None:
                mark("code-cached")
                return cached
        code = super().source_to_code(data, path, _optimize=_optimize)  # compile(dont_inherit)
        if self._back is not None and digest is not None:
            offer(self._back, digest, code)
        return code

    def _use_cached(self, digest: bytes) -> types.CodeType | None:
        """The memfd's code if it is this source's; the memfd closed either way."""
        memfd, self._cached = self._cached, None
        if memfd is None:
            return None
        try:
            return cached_code(memfd.fileno(), digest, self.path)
        finally:
            memfd.close()

    def close(self) -> None:
        """Close the return channel and the memfd, for good (idempotent)."""
        back, self._back = self._back, None
        memfd, self._cached = self._cached, None
        if back is not None:
            back.close()
        if memfd is not None:
            memfd.close()
