"""IFileSystemService: file access confined to a plugin's roots, whatever its paths say.

A plugin names a path relative to its first root (its private data folder) or absolute
inside one of its roots. ``locate`` decides which root and which components, without
touching the file system: NUL bytes, ``..`` anywhere and absolute paths outside every root
are refused there. ``resolve`` then walks the components from the root's directory fd,
one ``openat(O_NOFOLLOW)`` at a time, never by path: a symbolic link is read and spliced
into the walk only when it stays below the same root (a ``..`` in its target may not climb
past the root, an absolute target must lie inside it), at most MAX_SYMLINKS of them (so a
loop ends as a refusal). Every operation then works on the fds it holds, opens its final
component with O_NOFOLLOW too (a file swapped for a link after the walk is refused, not
followed), and checks through ``/proc/self/fd`` that the directory or file it is about to
use really is below the root (a folder moved out from under the walk is caught there).

What this does not stop: a process outside the service (a trusted plugin, say) renaming a
folder out of the root in the instant between that last check and the operation.

Sizes are bounded (``max_bytes``, listing entries, path length and depth). Files are
written atomically (a private temporary file renamed over the name) with mode 0600, and
folders made 0700. These functions block on file I/O: the supervisor runs them on its
background threads, never on its loop.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import secrets
import shutil
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from spec_kit_runtime.errors import (
    PathRefusedError,
    ServiceError,
    ServiceFileError,
    ServiceFileNotFoundError,
)
from spec_kit_runtime.policy.file_roots import MAX_DEPTH, Root, locate

MAX_SYMLINKS = 40  # as the kernel's own limit: more on one path is a loop
_MAX_WALKED = 4 * MAX_DEPTH  # components one call walks, symbolic links' targets included
MAX_ENTRIES = 10_000  # names in one list_directory answer
MAX_PATTERN = 255
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Located:
    """Where a path leads: an open fd of the folder holding it (below ``root``) and the
    name in that folder; ``name`` is empty when the path is that folder itself."""

    root: Root
    dir_fd: int
    name: str


@contextmanager
def resolve(root: Root, parts: Sequence[str], follow_last: bool = True,
            make_parents: bool = False) -> Iterator[Located]:
    """Walk ``parts`` from ``root`` by directory fds (see the module docstring).

    ``follow_last``: a final symbolic link is followed (within the root) rather than
    named. ``make_parents``: missing folders on the way are created (0700). The fd is
    closed on leaving the block.
    """
    stack = [_open_root(root)]
    pending = deque(parts)
    walked = 0  # components, links' included: a chain of links must not hold fds unbounded
    links = 0
    try:
        while pending:
            name = pending.popleft()
            walked += 1
            if walked > _MAX_WALKED or len(stack) > MAX_DEPTH:
                raise PathRefusedError(f"more than {MAX_DEPTH} folders deep, links followed")
            if name in ("", "."):
                continue
            if name == "..":  # only ever from a link's target: locate refuses the plugin's
                if len(stack) == 1:
                    raise PathRefusedError("a symbolic link leads out of the root")
                os.close(stack.pop())
                continue
            last = not pending
            target = None if last and not follow_last else _link_target(stack[-1], name)
            if target is not None:
                links += 1
                if links > MAX_SYMLINKS:
                    raise PathRefusedError(f"more than {MAX_SYMLINKS} symbolic links (a loop?)")
                if target.startswith("/"):
                    inside = root.below(target)
                    if inside is None:
                        raise PathRefusedError(
                            f"symbolic link '{name}' leads outside the root")
                    while len(stack) > 1:
                        os.close(stack.pop())
                    target_parts: Sequence[str] = inside
                else:
                    target_parts = target.split("/")
                pending.extendleft(reversed(target_parts))
                continue
            if last:
                yield Located(root, stack[-1], name)
                return
            stack.append(_open_dir(stack[-1], name, make_parents, root.owner))
        yield Located(root, stack[-1], "")
    finally:
        for fd in stack:
            os.close(fd)


def _open_root(root: Root) -> int:
    try:
        fd = os.open(root.path, _DIR)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP) and os.path.islink(root.path):
            raise PathRefusedError("the root was replaced by a symbolic link") from None
        raise
    try:
        confined(fd, root)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _link_target(dir_fd: int, name: str) -> str | None:
    """The target of ``name`` if it is a symbolic link; None if not (or not there)."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise


def _open_dir(dir_fd: int, name: str, make: bool, owner: tuple[int, int] | None) -> int:
    try:
        return os.open(name, _DIR, dir_fd=dir_fd)
    except FileNotFoundError:
        if not make:
            raise
    with contextlib.suppress(FileExistsError):  # made meanwhile: opened like any other
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    fd = os.open(name, _DIR, dir_fd=dir_fd)
    if owner is not None:
        os.fchown(fd, *owner)
    return fd


def confined(fd: int, root: Root) -> None:
    """Refuse unless the file or folder open as ``fd`` really is below ``root`` now."""
    real = os.readlink(f"/proc/self/fd/{fd}")
    if not root.holds(real):
        raise PathRefusedError("the path was moved out of the root while being used")


def open_at(at: Located, flags: int) -> int:
    """Open ``at`` (never following a link there), checked to be below its root."""
    fd = os.open(at.name or ".", flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=at.dir_fd)
    try:
        confined(fd, at.root)
    except BaseException:
        os.close(fd)
        raise
    return fd


class FileSystem:
    """One plugin's file system: its roots (the first is where relative paths go) and the
    largest file it may read or write."""

    def __init__(self, roots: Sequence[Root], max_bytes: int) -> None:
        if not roots:
            raise ValueError("a plugin's file system needs at least one root")
        self.roots = tuple(roots)
        self.max_bytes = max_bytes

    def read_file(self, path: str) -> str:
        """The UTF-8 text of a regular file."""
        with self._errors(path), self._at(path) as at:
            fd = open_at(at, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not hang the thread
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise ServiceFileError(f"'{path}' is not a regular file", path=path)
                if info.st_nlink > 1 and at.root.owner is not None:
                    # A hard link its worker made to a file only we may read: refused.
                    raise PathRefusedError(f"'{path}' has other hard links", path=path)
                self._check_size(path, info.st_size)
                data = _read_all(fd, self.max_bytes + 1)
            finally:
                os.close(fd)
        self._check_size(path, len(data))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ServiceFileError(f"'{path}' is not UTF-8 text (byte {exc.start})",
                                   path=path) from None

    def write_file(self, path: str, content: str) -> None:
        """Replace the file's content (atomically; the folder must exist)."""
        data = content.encode("utf-8")
        self._check_size(path, len(data))
        with self._errors(path), self._at(path, writing=True) as at:
            if not at.name:
                raise ServiceFileError(f"'{path}' is a folder", path=path)
            confined(at.dir_fd, at.root)
            temporary = f".{at.name[:200]}.{secrets.token_hex(6)}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=at.dir_fd)
            if at.root.owner is not None:
                os.fchown(fd, *at.root.owner)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(temporary, at.name, src_dir_fd=at.dir_fd, dst_dir_fd=at.dir_fd)
            except BaseException:
                os.unlink(temporary, dir_fd=at.dir_fd)
                raise

    def exists(self, path: str) -> bool:
        """Whether the path leads to something (a path outside the roots is refused)."""
        try:
            with self._errors(path), self._at(path) as at:
                if at.name:
                    os.stat(at.name, dir_fd=at.dir_fd, follow_symlinks=False)
        except ServiceFileNotFoundError:
            return False
        except ServiceFileError as exc:
            if exc.context.get("errno") == "ENOTDIR":  # a file where a folder would be
                return False
            raise
        return True

    def create_directory(self, path: str, parents: bool = True) -> None:
        """Make the folder (0700); an existing folder is fine."""
        with self._errors(path), self._at(path, writing=True, make_parents=parents) as at:
            if not at.name:
                return
            confined(at.dir_fd, at.root)
            try:
                os.mkdir(at.name, 0o700, dir_fd=at.dir_fd)
            except FileExistsError:
                info = os.stat(at.name, dir_fd=at.dir_fd, follow_symlinks=False)
                if not stat.S_ISDIR(info.st_mode):
                    raise ServiceFileError(f"'{path}' exists and is not a folder",
                                           path=path) from None
            else:
                if at.root.owner is not None:  # (a link swapped in meanwhile: its own owner)
                    os.chown(at.name, *at.root.owner, dir_fd=at.dir_fd, follow_symlinks=False)

    def list_directory(self, path: str, pattern: str = "*") -> list[str]:
        """The paths in a folder whose names match ``pattern`` (fnmatch, no ``/``), sorted,
        each as ``path`` joined with the name."""
        if "/" in pattern or "\0" in pattern or len(pattern) > MAX_PATTERN:
            raise ServiceError(f"a pattern matches names in one folder: no '/', at most "
                               f"{MAX_PATTERN} characters", pattern=pattern[:MAX_PATTERN])
        found: list[str] = []
        with self._errors(path), self._at(path) as at:
            fd = open_at(at, _DIR)
            try:
                with os.scandir(fd) as entries:  # read as it goes: a huge folder stops early
                    for entry in entries:
                        if fnmatch.fnmatchcase(entry.name, pattern):
                            found.append(entry.name)
                            if len(found) > MAX_ENTRIES:
                                raise ServiceError(
                                    f"'{path}' has more than {MAX_ENTRIES} entries matching "
                                    f"'{pattern}': use a narrower pattern", path=path)
            finally:
                os.close(fd)
        return [os.path.join(path, name) for name in sorted(found)]

    def delete(self, path: str) -> None:
        """Remove a file, or a folder and everything in it; a symbolic link is removed
        itself, never what it leads to."""
        with self._errors(path), self._at(path, writing=True, follow_last=False) as at:
            if not at.name:
                raise PathRefusedError(f"'{path}' is a root: it cannot be deleted", path=path)
            confined(at.dir_fd, at.root)
            info = os.stat(at.name, dir_fd=at.dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(at.name, dir_fd=at.dir_fd)  # fd-based: follows no link
            else:
                os.unlink(at.name, dir_fd=at.dir_fd)

    # -- helpers ---------------------------------------------------------------------------

    @contextmanager
    def _at(self, path: str, writing: bool = False, follow_last: bool = True,
            make_parents: bool = False) -> Iterator[Located]:
        root, parts = locate(self.roots, path)
        if writing and not root.writable:
            raise PathRefusedError(f"'{path}' is in a read-only root", path=path)
        with resolve(root, parts, follow_last, make_parents) as at:
            yield at

    def _check_size(self, path: str, size: int) -> None:
        if size > self.max_bytes:
            raise ServiceFileError(
                f"'{path}' is {size} bytes, more than the limit of {self.max_bytes} bytes "
                "(runtime.max_message_bytes)", path=path)

    @staticmethod
    @contextmanager
    def _errors(path: str) -> Iterator[None]:
        """OS errors as the plugin should see them: typed, naming its own path."""
        try:
            yield
        except ServiceError:
            raise
        except FileNotFoundError:
            raise ServiceFileNotFoundError(f"'{path}' does not exist", path=path) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathRefusedError(f"'{path}' became a symbolic link while being used",
                                       path=path) from None
            name = errno.errorcode.get(exc.errno or 0, "EIO")
            raise ServiceFileError(f"'{path}': {exc.strerror or exc}", path=path,
                                   errno=name) from None


def _read_all(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit and (chunk := os.read(fd, min(1 << 20, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
