"""The worker's C library calls: freed heap pages really go back to the kernel."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import ctypes, os
    from spec_kit_worker.libc import LIBC, release_free_memory

    LIBC.malloc.restype = ctypes.c_void_p
    LIBC.free.argtypes = [ctypes.c_void_p]
    page = os.sysconf("SC_PAGE_SIZE")

    def resident() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * page

    blocks = [LIBC.malloc(4000) for _ in range(5000)]  # 20 MB of heap, below mmap's threshold
    for block in blocks:
        ctypes.memset(block, 1, 4000)
    for block in blocks[:-1]:  # the last one keeps the heap's top: no automatic trim
        LIBC.free(block)
    before = resident()
    release_free_memory()
    print(before - resident())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_memory_returns_freed_heap_pages() -> None:
    released = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                              check=True, timeout=30)
    assert int(released.stdout) > 10 * 2**20
