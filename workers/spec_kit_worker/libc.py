"""The C library, for the few calls the ``os`` module lacks (workers are POSIX only)."""

import ctypes
import mmap
import os
import sys

LINUX = sys.platform.startswith("linux")
LIBC = ctypes.CDLL(None, use_errno=True)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the kernel (glibc's ``malloc_trim``; elsewhere a
    no-op). Start-up frees much of what it allocates (compiling the plugin's source, mostly),
    but freed heap pages stay the worker's own, counted in its memory for its whole life:
    about 0.15 MiB a worker here."""
    trim = getattr(LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def map_shared(fd: int, size: int) -> int:
    """Map the first ``size`` bytes of ``fd`` shared, readable and writable: the address.
    Python's ``mmap`` would keep a duplicate of ``fd`` open for the mapping's life, one more
    fd in the plugin's process. Raises OSError."""
    mapper = LIBC.mmap
    mapper.restype = ctypes.c_void_p
    mapper.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long)
    address = mapper(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
    if address is None or address == ctypes.c_void_p(-1).value:  # MAP_FAILED
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return int(address)
