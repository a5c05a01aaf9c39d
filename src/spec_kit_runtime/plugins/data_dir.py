"""Each plugin's data folder, ``DATA_DIR/plugins/ID``: the one place its worker may write.

``DATA_DIR`` is ``runtime.data_dir``, by default ``$XDG_DATA_HOME/spec-kit-runtime`` (else
``~/.local/share/spec-kit-runtime``); it outlives the supervisor, unlike the runtime
directory. The supervisor makes the folders before each spawn: ``DATA_DIR`` and
``DATA_DIR/plugins`` 0711 (others may pass through, not list, so that a worker running as
another uid reaches its own folder), each plugin's folder 0700 and owned by the uid its
worker runs as. A folder someone else could write to, or swap for a symbolic link, is
refused rather than used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PASSAGE_MODE = 0o711
PRIVATE_MODE = 0o700


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/spec-kit-runtime``, else ``~/.local/share/spec-kit-runtime``."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "spec-kit-runtime"


def plugin_data_dir(data_dir: Path, plugin_id: str, owner: tuple[int, int] | None) -> Path:
    """Make (or check) ``plugin_id``'s folder, owned by ``owner`` (uid, gid) or by us.

    PermissionError names the folder and what is wrong with it.
    """
    plugins = data_dir / "plugins"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    for passage in (data_dir, plugins):
        _make(passage, PASSAGE_MODE)
        _check(passage, os.getuid())
    folder = plugins / plugin_id
    uid, gid = owner or (os.getuid(), os.getgid())
    _make(folder, PRIVATE_MODE)
    info = folder.lstat()
    if stat.S_ISDIR(info.st_mode) and (info.st_uid, info.st_gid) != (uid, gid) and not os.getuid():
        os.chown(folder, uid, gid)  # the plugin's worker user changed: the folder follows
    _check(folder, uid)
    if stat.S_IMODE(info.st_mode) != PRIVATE_MODE:
        os.chmod(folder, PRIVATE_MODE)
    return folder


def _make(path: Path, mode: int) -> None:
    """Create ``path`` with exactly ``mode`` (whatever the umask), unless it exists."""
    try:
        path.mkdir(mode=PRIVATE_MODE)
    except FileExistsError:
        return
    os.chmod(path, mode)


def _check(path: Path, uid: int) -> None:
    """A real directory of ``uid`` that nobody else may write to."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"data folder {path} is not a directory")
    if info.st_uid != uid:
        raise PermissionError(f"data folder {path} is owned by uid {info.st_uid}, not {uid}")
    if stat.S_IMODE(info.st_mode) & 0o022:
        raise PermissionError(f"data folder {path} may be written by others "
                              f"(mode {stat.S_IMODE(info.st_mode):o})")
