"""A log file kept to a size: a PluginContainer's private supervisor may live as long as
its caller (an editor, a server), and its plugins may print up to ``output_kb_per_s``.

A module of its own because ``logging.handlers`` costs every command of the CLI about 5 ms
to import, and only a private supervisor needs it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from logging.handlers import RotatingFileHandler
from pathlib import Path

MAX_FILE_BYTES = 4 * 1024 * 1024


class CappedFile(RotatingFileHandler):
    """A log file renamed ``NAME.1`` (replacing an older one) once it would pass
    ``max_bytes``, and started afresh. The file descriptors ``follow`` (stdout and stderr:
    a stray print, a last traceback) are moved to the fresh file with it; a child that
    inherited them (the fork server) goes on writing to the older part."""

    def __init__(self, path: Path, max_bytes: int = MAX_FILE_BYTES,
                 follow: Sequence[int] = (1, 2)) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=1, encoding="utf-8")
        self.follow = tuple(follow)

    def doRollover(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        super().doRollover()
        if self.stream is not None:
            for fd in self.follow:
                os.dup2(self.stream.fileno(), fd)
