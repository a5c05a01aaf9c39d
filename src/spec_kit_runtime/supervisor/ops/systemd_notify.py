"""Telling systemd (``Type=notify``) that the supervisor is ready, and feeding its watchdog.

systemd passes ``NOTIFY_SOCKET`` (a datagram socket; a leading ``@`` is the abstract
namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. The supervisor says ``READY=1``
once every enabled plugin has started (or was given up on), ``WATCHDOG=1`` from its loop
twice per watchdog period (so a wedged loop is restarted by systemd), and ``STOPPING=1``
when it begins to shut down. Outside systemd this does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """The notify socket from the environment, if systemd gave one."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        path = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = environ.get("WATCHDOG_USEC", "")
        watched_pid = environ.get("WATCHDOG_PID", "")
        mine = not watched_pid or watched_pid == str(os.getpid())
        self.watchdog_interval = (int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine
                                  else None)  # seconds between WATCHDOG=1
        self._socket: socket.socket | None = None
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *fields: str) -> None:
        """Send ``KEY=value`` fields (nothing outside systemd; a failure is only logged)."""
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None
