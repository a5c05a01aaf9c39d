"""One plugin's compiled code in a sealed memfd: the only form in which it leaves the worker
that compiled it (``code_cache``).

Why a memfd: the fork server must hold the code for the plugin's later workers without
holding it in its own memory, which every child it forks would inherit (any plugin could
then read any other's code, constants and all, and carry it in its RSS). A memfd is a file
no path reaches; the fork server holds only its fd, which its other children close
(``ForkServer._own_fds``), and never reads it.

Why sealed: once ``F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`` are on, no
process holding the fd (the first worker's plugin code included, had it kept one) can
change a byte of it; so what a later worker reads is what the first worker wrote before
any of its plugin's code ran. The fork server checks the seals and the size
(``checked_size``), nothing else.

Layout: a header (``_HEADER``: magic, this format's version, the interpreter's bytecode
magic number, the sha256 of the source bytes that were compiled), then ``marshal.dumps``
of the module's code object.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from importlib.util import MAGIC_NUMBER

MAGIC = b"skcc"
VERSION = 1
SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
_HEADER = struct.Struct("<4sH4s32s")  # MAGIC, VERSION, MAGIC_NUMBER, sha256 of the source
HEADER_BYTES = _HEADER.size
MAX_CODE_BYTES = 256 * 1024  # a larger plugin's code is not cached
MAX_BYTES = HEADER_BYTES + MAX_CODE_BYTES
_NAME = "spec-kit-code"  # shown in /proc/PID/fd as "/memfd:spec-kit-code (deleted)"


def write(digest: bytes, code: bytes) -> int:
    """A new sealed memfd holding ``code`` (marshalled) compiled from the source whose sha256
    is ``digest``; the caller's to close. Raises (ValueError: too large; OSError: the kernel
    refused) with nothing left open."""
    if len(code) > MAX_CODE_BYTES or len(digest) != 32:
        raise ValueError("not cacheable")
    fd = os.memfd_create(_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        data = memoryview(_HEADER.pack(MAGIC, VERSION, MAGIC_NUMBER, digest) + code)
        while data:
            data = data[os.write(fd, data):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_sealed(fd: int) -> bool:
    """``fd`` is a file with all of ``SEALS`` (only a memfd made to allow sealing can have
    them: any other file refuses ``F_GET_SEALS``, or has only ``F_SEAL_SEAL``)."""
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS == SEALS
    except OSError:
        return False


def checked_size(fd: int) -> int | None:
    """The size of ``fd`` if it is a memfd sealed with ``SEALS`` whose size fits this
    format, else None. What the fork server checks of an fd a worker sent it, without
    reading it."""
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or not is_sealed(fd):
            return None
        if not os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:"):
            return None
    except OSError:
        return None
    return status.st_size if HEADER_BYTES < status.st_size <= MAX_BYTES else None


def read(fd: int, digest: bytes) -> memoryview | None:
    """The marshalled code in the sealed memfd ``fd`` if it was compiled from the source whose
    sha256 is ``digest`` by this interpreter's version of the format, else None."""
    try:
        size = os.fstat(fd).st_size
        if not HEADER_BYTES < size <= MAX_BYTES or not is_sealed(fd):
            return None
        header = os.pread(fd, HEADER_BYTES, 0)  # the body is read only if it is this source's
        if header != _HEADER.pack(MAGIC, VERSION, MAGIC_NUMBER, digest):
            return None
        data = os.pread(fd, size - HEADER_BYTES, HEADER_BYTES)
    except OSError:
        return None
    return memoryview(data) if len(data) == size - HEADER_BYTES else None
