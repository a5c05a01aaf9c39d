"""The OS confinement a worker applies to itself, before any plugin code: a network namespace
of its own, another uid, a Landlock ruleset (see ``spec_kit_runtime.policy.confinement`` for what
is asked and why).

Each step either works, says why the kernel would not have it (reported in the Hello, and
in status), or raises: a uid drop that fails must not leave the plugin running as root.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys
from pathlib import Path

from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.birth.parent import die_with_parent
from spec_kit_worker.libc import LIBC

from . import landlock

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_CAPABILITY_VERSION_3 = 0x20080522

SYSTEM_LIBRARIES = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32",
                    "/usr/local/lib")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/dev/urandom", "/dev/random")
# Name resolution and TLS certificates, for a plugin that asks for network.
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf",
                 "/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/ssl", "/etc/pki",
                 "/etc/ca-certificates", "/usr/share/ca-certificates")


def own_network() -> bool | str:
    """A new, empty network namespace (no interface up, not even loopback): True, or why not.

    As root directly; otherwise inside a user namespace of its own that maps only our own
    uid and gid. Either needs a single-threaded process: call it before any thread starts.
    Not for a root without the right to (a container's): in a user namespace it would lose
    its power over the host's files, which its plugin may count on.
    """
    if LIBC.unshare(CLONE_NEWNET) == 0:
        return True
    direct = os.strerror(ctypes.get_errno())
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return f"the kernel refused a network namespace to root ({direct})"
    if LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return (f"the kernel refused a network namespace ({direct}), and one in a user "
                f"namespace ({os.strerror(ctypes.get_errno())})")
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)
    _no_capabilities()
    return True


def _no_capabilities() -> None:
    """Give up the capabilities a new user namespace grants its creator: with them, a
    plugin could reach kernel code meant for administrators of its namespaces (nftables)."""
    header = struct.pack("=Ii", _CAPABILITY_VERSION_3, 0)
    data = bytes(2 * struct.calcsize("=III"))  # effective, permitted, inheritable: none
    if LIBC.capset(header, data) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"capset: {os.strerror(code)}")


def reach(endpoint: str) -> str:
    """The supervisor's socket through a file descriptor of its own (``O_PATH``, opened now).

    Connecting through ``/proc/self/fd/N`` needs no search permission on the runtime
    directory (0700), so a worker that runs as another uid still reaches the socket, and
    reconnects to it, while every other process of that uid finds the directory closed.
    """
    path = endpoint.removeprefix("ipc://")
    if path == endpoint:
        raise ValueError(f"workers connect over ipc:// only, not {endpoint!r}")
    return f"ipc:///proc/self/fd/{os.open(path, os.O_PATH | os.O_CLOEXEC)}"


def drop_to(uid: int, gid: int, parent_pid: int) -> None:
    """Become ``uid``/``gid`` for good, with no supplementary groups (raises if refused).

    The kernel clears the parent-death signal when credentials change: set it again.
    """
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
        raise PermissionError(f"could not become uid {uid} gid {gid}")
    die_with_parent(parent_pid)


def ruleset(boot: Bootstrap) -> landlock.Ruleset | str | None:
    """The worker's Landlock rules, to enforce once no_new_privs is set; or why there are
    none (None: not asked for): ``common_rules`` and ``plugin_rules``, with the worker's own
    ``/proc`` entry still to add (``own_proc``).

    The fork server builds a forked worker's ruleset just before the fork: done in the worker,
    the same Python work copies pages from the fork server (measured: 0.15 MiB and 1 ms more
    a worker). Its spare's it builds ahead, with all but the plugin's rules (``spare``).
    """
    rules = common_rules(boot.landlock, boot.network)
    if isinstance(rules, landlock.Ruleset):
        plugin_rules(rules, boot)
    return rules


def common_rules(asked: bool, network: bool) -> landlock.Ruleset | str | None:
    """A worker's Landlock rules that owe nothing to its plugin; or why there are none (None:
    ``asked`` is false).

    Read and execute: the interpreter, its libraries and the imported packages. Read: a few
    system files (and the network's, with ``network``). Read and write: ``/dev/null``.
    Nothing else; without ``network``, no TCP either.
    """
    if not asked:
        return None
    try:
        rules = landlock.Ruleset(network=network)
    except landlock.Unsupported as exc:
        return str(exc)
    for path in interpreter_paths():
        rules.allow(path, landlock.READ_EXECUTE)
    for path in _common_files(network):
        rules.allow(path, landlock.READ)
    rules.allow("/dev/null", landlock.READ_FILE | landlock.WRITE_FILE | landlock.TRUNCATE)
    return rules


def _common_files(network: bool) -> tuple[str, ...]:
    return (*SYSTEM_FILES, *(NETWORK_FILES if network else ()))


def common_identity(network: bool) -> tuple[tuple[int, int] | None, ...]:
    """Which files ``common_rules`` would hold now (a rule holds the file it was given, not
    its path): device and inode of each, None for one that does not exist."""
    found: list[tuple[int, int] | None] = []
    for path in (*interpreter_paths(), *_common_files(network), "/dev/null"):
        try:
            status = os.stat(path)
        except OSError:
            found.append(None)
        else:
            found.append((status.st_dev, status.st_ino))
    return tuple(found)


def plugin_rules(rules: landlock.Ruleset, boot: Bootstrap) -> None:
    """The plugin's own rules: read its folder, read and write its data folder."""
    rules.allow(boot.plugin_dir, landlock.READ)
    rules.allow(boot.data_dir, landlock.READ_WRITE)


def own_proc(rules: landlock.Ruleset, pid: int | None = None) -> None:
    """Let the worker ``pid`` (this process by default) read its own ``/proc/PID`` (its
    children, at its end): added by the worker itself, which alone knows its pid in time;
    by the fork server for its spare, whose pid it knows from the fork. A ruleset is
    never shared: each worker's holds its own pid only."""
    rules.allow(f"/proc/{pid or os.getpid()}", landlock.READ)


@functools.cache
def interpreter_paths() -> tuple[str, ...]:
    """Python's prefixes, the system's libraries, and the folder of every imported package.

    Not ``sys.path`` as a whole: with ``python -m`` it starts with the working directory,
    which may be anything, ``/`` included. Worked out once, by the fork server: in a forked
    worker, walking ``sys.modules`` would copy pages (reference counts) for milliseconds.
    Only paths that exist, none beneath another: each rule costs the worker a few syscalls.
    """
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             *SYSTEM_LIBRARIES}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if "." not in name and file and hasattr(module, "__path__"):
            paths.add(str(Path(file).parent))
    existing = sorted(path for path in paths if os.path.exists(path))
    return tuple(path for path in existing  # one rule covers all beneath it
                 if not any(path.startswith(os.path.join(other, "")) for other in existing))
