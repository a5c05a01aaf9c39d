"""Receiving file descriptors (SCM_RIGHTS) on the fork server's private channels.

Not ``socket.recv_fds``: Python 3.11's ignores its ``flags`` argument (so no MSG_DONTWAIT:
the fork server would block on a worker's channel; no MSG_CMSG_CLOEXEC). Here the fds come
close-on-exec, never more than ``maxfds`` of them (the kernel closes the rest and says so
with MSG_CTRUNC), and the caller owns every fd returned, whatever else it finds wrong.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket


def receive_fds(sock: socket.socket, size: int, maxfds: int,
                flags: int = 0) -> tuple[bytes, list[int], int]:
    """One packet of at most ``size`` bytes from ``sock``, with at most ``maxfds`` fds: the
    bytes, the fds (the caller's to close), and the message flags (MSG_TRUNC,
    MSG_CTRUNC). Raises as ``recvmsg`` does (BlockingIOError with MSG_DONTWAIT)."""
    fds = array.array("i")
    message, ancillary, message_flags, _ = sock.recvmsg(
        size, socket.CMSG_LEN(maxfds * fds.itemsize), flags | socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    received = list(fds)
    for extra in received[maxfds:]:  # never, by the buffer's size; but never kept either
        with contextlib.suppress(OSError):
            os.close(extra)
    return message, received[:maxfds], message_flags
