"""ILoggingService: a plugin's log lines in the supervisor's log, tagged and within budget.

A line is logged as the plugin's captured output is (``output_capture``): on the logger
``spec_kit_runtime.plugin``, as ``[ID] message`` (one record per line of it), with
``plugin`` (and ``stream`` "log") on the record for JSON logs; keyword arguments follow
the message as ``key=value``. It is charged to the same ``OutputBudget`` as the plugin's
stdout and stderr, so logging through the service is no way around ``output_kb_per_s``:
what is over the budget is dropped and counted in ``status`` (``output.dropped_lines``).
Lines below the supervisor's log level are neither logged nor charged. Runs on the
supervisor's loop (no I/O of its own beyond the log handler).
"""

from __future__ import annotations

import logging

from spec_kit_runtime.errors import ServiceError
from spec_kit_runtime.policy.output_budget import OutputBudget
from spec_kit_runtime.supervisor.output_capture import LINE_OVERHEAD, MAX_LINE_BYTES
from spec_kit_runtime.wire.protocol import LOG_LEVELS as LEVELS

log = logging.getLogger("spec_kit_runtime.plugin")


def log_lines(plugin_id: str, budget: OutputBudget, level: str, message: str,
              fields: dict[str, str], now: float) -> int:
    """Log a message of ``plugin_id`` at ``level``, each of its lines on its own (so no
    line can pass for one of the supervisor's); returns how many lines were logged."""
    number = LEVELS.get(level)
    if number is None:
        raise ServiceError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if not log.isEnabledFor(number):
        return 0
    text = " ".join([message, *(f"{key}={value}" for key, value in fields.items())])
    logged = 0
    for line in text.splitlines() or [""]:
        data = line.encode("utf-8", "replace")
        kept = data[:MAX_LINE_BYTES]
        budget.drop(len(data) - len(kept), 0)
        if budget.take(len(kept) + 1, now, LINE_OVERHEAD):
            log.log(number, "[%s] %s", plugin_id, kept.decode("utf-8", "replace"),
                    extra={"plugin": plugin_id, "stream": "log"})
            logged += 1
    return logged
