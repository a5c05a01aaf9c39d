"""The supervisor's log: human-readable lines by default, one JSON object per line for machines.

Every record about a plugin carries its id as ``plugin``: captured output says so itself
(``extra``), and the supervisor's own messages about a plugin follow one convention, a
message starting ``"plugin %s"`` with the id as its first argument, which ``PluginTagger``
reads. So a JSON consumer can filter by plugin without parsing messages.

A PluginContainer's private supervisor writes to a file instead (``private_logs``), kept
to a size by ``capped_file.CappedFile``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class PluginTagger(logging.Filter):
    """Gives ``plugin`` to records whose message is about one (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "plugin"):
            args = record.args
            if (isinstance(record.msg, str) and record.msg.startswith("plugin %s")
                    and isinstance(args, tuple) and args and isinstance(args[0], str)):
                record.plugin = args[0]
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and plugin/stream if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("plugin", "stream"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, log_format: str, log_file: Path | None = None) -> None:
    """Log at ``level`` in ``log_format`` (text or json) to stderr, or to ``log_file``
    (capped), where stdout and stderr are expected to lead already."""
    handler: logging.Handler
    if log_file is not None:
        from .capped_file import CappedFile  # logging.handlers: 5 ms, for private ones only
        handler = CappedFile(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(PluginTagger())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
