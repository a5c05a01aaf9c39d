"""Where a PluginContainer's private supervisor writes: a log file of its own, never the
caller's terminal.

The private supervisor outlives its caller by a moment (it stops once the caller is gone),
so whatever it, its fork server or a worker would write on an inherited terminal would
show up after the caller's command returned. Its stdout and stderr are a log file instead:
one per supervisor, ``supervisor-TIME-PID.log`` (PID: the caller's), in the container's
``log_dir``, else ``$XDG_STATE_HOME/spec-kit-runtime/logs``, else
``~/.local/state/spec-kit-runtime/logs`` (0700). A CLI makes one per command, so only the
newest ``KEEP`` files are kept; each one is capped by the supervisor itself (``logs.capped_file``).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.wire.rundir import private_directory

KEEP = 50  # files; older ones are removed when a new one is made
_PREFIX, _SUFFIX = "supervisor-", ".log"


def default_log_dir() -> Path:
    """``$XDG_STATE_HOME/spec-kit-runtime/logs``, else ``~/.local/state/spec-kit-runtime/logs``."""
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "spec-kit-runtime" / "logs"


def new_log_file(folder: Path | None = None, keep: int = KEEP) -> Path:
    """A new, empty log file (0600) in ``folder`` (made 0700 if need be), after removing
    all but the newest ``keep - 1`` earlier ones. ConfigError if the folder is unusable."""
    folder = private_directory((folder or default_log_dir()).absolute(), "log folder")
    prune(folder, keep - 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        name = f"{_PREFIX}{stamp}-{os.getpid()}{f'-{attempt}' if attempt else ''}{_SUFFIX}"
        try:
            os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                             | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot make a log file in {folder}: {exc.strerror}") from None
        return folder / name
    raise ConfigError(f"cannot make a log file in {folder}: too many of this second")


def prune(folder: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` log files of ``folder`` (by when they were last
    written), with their rotated parts (``NAME.1``)."""
    logs: list[tuple[float, str]] = []
    rotated: set[str] = set()
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            if entry.name.endswith(_SUFFIX):
                with contextlib.suppress(OSError):
                    logs.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
            elif entry.name.endswith(_SUFFIX + ".1"):
                rotated.add(entry.name)
    logs.sort(reverse=True)
    kept = {name for _, name in logs[:max(keep, 0)]}
    doomed = [name for _, name in logs[max(keep, 0):]]
    doomed += [name for name in rotated if name.removesuffix(".1") not in kept]
    for name in doomed:
        with contextlib.suppress(OSError):
            os.unlink(folder / name)


def tail(path: Path, lines: int = 20, max_bytes: int = 4096) -> str:
    """The last ``lines`` lines of ``path`` (at most ``max_bytes``); "" if unreadable."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - max_bytes))
            data = file.read(max_bytes)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    if len(data) == max_bytes and size > max_bytes:
        text = text[1:]  # the first one is cut
    return "\n".join(text[-lines:])
