"""The folder of a PluginContainer's private supervisor in TMPDIR, and who removes it.

A container's supervisor gets a folder of its own, ``TMPDIR/spec-kit-runtime-XXXXXXXX``
(``/tmp`` when TMPDIR's path is too long for a socket path under it),
holding its config file and its runtime directory. Its caller may exit without
``shutdown()`` (Spec-Kit's CLI does, after every command), and then the supervisor is the
only one left: so it removes the folder itself as it exits (``run --private-dir``). A
supervisor that was SIGKILLed cannot; the next container's start sweeps such folders.

What marks a folder as a private supervisor's, and tells whether anyone still uses it, is
its lock file ``private.lock``. It is made with the folder, under another name, and renamed
into place only once locked, so the file never exists unlocked while the folder is in use.
The caller holds a shared lock on it until its supervisor is ready; the supervisor takes one
of its own before it is, and holds it for its whole life. The kernel drops a lock when its
holder dies, however it dies. So a folder whose lock can be taken exclusively has nobody left,
and is removed. A folder without that file, someone else's, not private (0700), or reached
through a symbolic link is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.wire.rundir import private_problem

PREFIX = "spec-kit-runtime-"
LOCK = "private.lock"
_MAKING = "private.lock.new"
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# Opening a lock file never waits (a FIFO planted there would block ``open``), and only a
# regular file counts.
_LOCK_OPEN = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW
MAX_SWEPT = 64  # folders of ours looked at per sweep (the next start takes the rest)
MAX_SCANNED = 4096  # names read per sweep: a folder full of others' names cannot slow us


# The longest path the supervisor binds in the folder, after the parent's path.
_SOCKET_TAIL = len(f"/{PREFIX}XXXXXXXX/run/control.sock")
MAX_SOCKET_PATH = 107  # a unix socket's path: 108 bytes with the final NUL


def default_parent() -> Path:
    """TMPDIR, unless its path is too long for the supervisor's sockets under it (a deep
    TMPDIR, as macOS's or a test's): ``/tmp`` then, which always fits."""
    parent = tempfile.gettempdir()
    if len(os.fsencode(parent)) + _SOCKET_TAIL > MAX_SOCKET_PATH:
        return Path("/tmp")
    return Path(parent)


def create(parent: Path | None = None) -> tuple[Path, int]:
    """A fresh private folder in ``parent`` (``default_parent()`` by default), and the
    caller's claim on it: an fd with a shared lock, to be closed once the supervisor holds
    its own."""
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent or default_parent()))
    try:
        fd = os.open(folder / _MAKING, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            os.rename(folder / _MAKING, folder / LOCK)
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, fd


def hold(folder: Path) -> int:
    """In the supervisor: a shared lock on ``folder``'s lock file, for the process's life.

    ConfigError if ``folder`` is not a private supervisor's folder, or is being removed
    by a sweep (then the lock is held exclusively)."""
    try:
        fd = _open_lock(folder / LOCK)
    except OSError as exc:
        raise ConfigError(f"{folder} is not a private supervisor's folder: {exc.strerror}"
                          ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"{folder} is being removed") from None
    return fd


@contextlib.contextmanager
def owned(folder: Path) -> Iterator[None]:
    """In the supervisor: hold ``folder`` for the block (``hold``), and remove it at its end,
    however the block ends."""
    fd = hold(folder)
    try:
        yield
    finally:
        remove(folder)
        os.close(fd)


def remove(folder: Path) -> None:
    """Remove ``folder`` and everything in it (gone already: nothing to do)."""
    shutil.rmtree(folder, ignore_errors=True)


def sweep(parent: Path | None = None) -> list[Path]:
    """Remove the private folders in ``parent`` (``default_parent()`` by default) that
    nobody holds any more: those of SIGKILLed supervisors. Returns what was removed."""
    parent = Path(parent or default_parent())
    try:
        with os.scandir(parent) as scan:
            entries = list(itertools.islice(
                (entry for entry in itertools.islice(scan, MAX_SCANNED)
                 if entry.name.startswith(PREFIX) and _ours(entry)), MAX_SWEPT))
    except OSError:
        return []
    removed = []
    for entry in entries:
        with contextlib.suppress(OSError):
            if _remove_if_abandoned(parent, entry.name):
                removed.append(parent / entry.name)
    return removed


def _ours(entry: os.DirEntry[str]) -> bool:
    """A directory of our own (an lstat, which cannot hang): others' count for nothing."""
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def _open_lock(path: Path | str, dir_fd: int | None = None) -> int:
    """An fd of the lock file ``path``; OSError unless it is a regular file."""
    fd = os.open(path, _LOCK_OPEN, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


def _remove_if_abandoned(parent: Path, name: str) -> bool:
    """Remove ``parent/name`` if it is a private folder of ours that nobody holds."""
    info = os.lstat(parent / name)
    if private_problem(info):
        return False
    folder = os.open(parent / name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    try:
        if os.fstat(folder).st_ino != info.st_ino:  # swapped since the lstat
            return False
        try:
            lock = _open_lock(LOCK, dir_fd=folder)
        except FileNotFoundError:  # not a private supervisor's folder (or the file is new)
            return False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: in use
            # Held until it is gone: a supervisor cannot start in it meanwhile (``hold``),
            # nor can another sweep remove it twice. rmtree opens each folder without
            # following symbolic links (shutil.rmtree.avoids_symlink_attacks).
            shutil.rmtree(parent / name)
        finally:
            os.close(lock)
    finally:
        os.close(folder)
    return True
