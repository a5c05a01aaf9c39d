"""Landlock (Linux 5.13+), by ``ctypes`` syscalls: what a worker may open, connect and signal.

A ruleset names the rights it *handles*; once enforced, a handled right is denied except
beneath the paths a rule grants it on. Only rights the running kernel's ABI knows are
handled (the best-effort dance of the kernel's documentation): on an older kernel the
newer rights stay unrestricted, never make the ruleset fail. What each ABI brought:

1. files and directories: execute, read, write, make and remove entries (5.13);
2. ``REFER``: linking or renaming a file into another directory (5.19);
3. ``TRUNCATE`` (6.2);
4. TCP ``bind`` and ``connect`` (6.7);
5. ``IOCTL_DEV``: ioctls on devices (6.10);
6. scopes: abstract unix sockets and signals of processes outside the domain (6.12);
7. audit logging of denials (6.15; not used here).

Enforcement applies to the calling thread and what it starts afterwards: a worker enforces
before its ZeroMQ context starts any thread. Paths are opened (``O_PATH``) when a rule is
added, so rules may be added while the process can still reach them, and enforced later.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
import struct
import sys

from spec_kit_worker.libc import LIBC, LINUX

# The syscall numbers are those of the generic table, shared by these architectures.
_GENERIC_TABLE = ("x86_64", "aarch64", "armv7l", "i686", "i386", "riscv64",
                  "ppc64le", "ppc64", "s390x", "loongarch64")
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5  # 1 << 6 and 1 << 11: making device nodes, never granted
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15

NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

READ = READ_FILE | READ_DIR
READ_EXECUTE = READ | EXECUTE
READ_WRITE = (READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK
              | MAKE_FIFO | MAKE_SYM | REFER | TRUNCATE)  # no execute, no device nodes
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # all a file can take

_FS_BY_ABI = {1: (1 << 13) - 1, 2: REFER, 3: TRUNCATE, 5: IOCTL_DEV}
_NET_BY_ABI = {4: NET_BIND_TCP | NET_CONNECT_TCP}
_SCOPES_BY_ABI = {6: SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL}

LIBC.syscall.restype = ctypes.c_long


class Unsupported(Exception):
    """This kernel (or machine) has no usable Landlock; the message says why."""


def _syscall(number: int, *args: int | bytes | None) -> int:
    """``syscall(number, *args)``: ints and None as words, bytes as a pointer to a copy."""
    converted = [ctypes.create_string_buffer(a, len(a)) if isinstance(a, bytes)
                 else ctypes.c_void_p(a) for a in args]
    result = int(LIBC.syscall(ctypes.c_long(number), *converted))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def abi_version() -> int:
    """The kernel's Landlock ABI version; Unsupported says why there is none."""
    if not LINUX:
        raise Unsupported(f"Landlock is Linux only (this is {sys.platform})")
    if platform.machine() not in _GENERIC_TABLE:
        raise Unsupported(f"Landlock's syscall numbers are not known here ({platform.machine()})")
    try:
        return _syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            raise Unsupported("this kernel has no Landlock (built without it)") from None
        if exc.errno == errno.EOPNOTSUPP:
            raise Unsupported("Landlock is disabled on this kernel (boot options: lsm=)") from None
        raise


def _known(by_abi: dict[int, int], abi: int) -> int:
    return sum(bits for version, bits in by_abi.items() if version <= abi)


class Ruleset:
    """A Landlock ruleset being built; ``enforce`` restricts this thread for good.

    ``network=False`` handles TCP bind and connect (ABI 4+) with no rule granting them:
    no TCP at all. Scopes (ABI 6+) always apply: no signal to, and no abstract unix socket
    of, a process outside this domain (the supervisor, other workers).
    """

    def __init__(self, network: bool) -> None:
        self.abi = abi_version()
        self.handled_fs = _known(_FS_BY_ABI, self.abi)
        handled_net = 0 if network else _known(_NET_BY_ABI, self.abi)
        attr = struct.pack("=QQQ", self.handled_fs, handled_net,
                           _known(_SCOPES_BY_ABI, self.abi))
        self._fd = _syscall(_CREATE_RULESET, attr, len(attr), 0)

    @classmethod
    def received(cls, fd: int, abi: int) -> Ruleset:
        """The ruleset behind ``fd``, built by another process of this kernel (ABI ``abi``)
        and passed on (SCM_RIGHTS): this process adds its own rules and enforces it."""
        rules = cls.__new__(cls)
        rules.abi, rules.handled_fs, rules._fd = abi, _known(_FS_BY_ABI, abi), fd
        return rules

    def fileno(self) -> int:
        """The ruleset's fd, to pass to the process that is to enforce it."""
        return self._fd

    def allow(self, path: str, access: int) -> None:
        """Grant ``access`` beneath ``path`` (only what a file takes, for a file); a path that
        does not exist is left out: there is nothing beneath it to grant."""
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                access &= _FILE_RIGHTS
            rule = struct.pack("=Qi", access & self.handled_fs, fd)
            _syscall(_ADD_RULE, self._fd, _RULE_PATH_BENEATH, rule, 0)
        finally:
            os.close(fd)

    def enforce(self) -> None:
        """Restrict this thread and its future children (needs no_new_privs first)."""
        try:
            _syscall(_RESTRICT_SELF, self._fd, 0)
        finally:
            self.close()

    def close(self) -> None:
        """Drop this process's handle on the ruleset (enforced or not)."""
        os.close(self._fd)
