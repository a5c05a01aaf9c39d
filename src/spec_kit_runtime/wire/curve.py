"""ZeroMQ CURVE on a tcp:// clients endpoint: the supervisor's server socket, the clients'.

A tcp:// endpoint is served encrypted or not at all. The supervisor makes a fresh
keypair at every start; the secret key goes into its socket and nowhere else, the public
key into ``supervisor.json`` (0600), where clients find the endpoint. Each client
connection makes an ephemeral keypair of its own. CURVE encrypts and proves the server to
the client (a process squatting on the port cannot complete the handshake, so it never
sees the token); the client token, proven on top as over ipc://, authorises the client.
No ZAP handler: client keys are ephemeral, there is nothing to check them against.
"""

from __future__ import annotations

import zmq
from zmq.utils.z85 import Z85CHARS

from spec_kit_runtime.errors import ConfigError, SupervisorUnavailable

_FAILED_HANDSHAKE = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_Z85 = frozenset(Z85CHARS)


def required(endpoint: str) -> bool:
    """Whether connections to ``endpoint`` must be encrypted (tcp://; ipc:// stays in the
    private runtime directory)."""
    return endpoint.startswith("tcp://")


def make_server(sock: zmq.Socket[bytes]) -> str:
    """Make ``sock`` a CURVE server with a fresh keypair, before it binds (a listener takes
    its options when it binds); returns the public key (Z85)."""
    if not zmq.has("curve"):
        raise ConfigError("runtime.endpoint: a tcp:// endpoint is served with CURVE "
                          f"encryption only, and this libzmq ({zmq.zmq_version()}) has no "
                          "CURVE: use an ipc:// endpoint")
    public, secret = zmq.curve_keypair()
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    return public.decode("ascii")


def check_server_key(endpoint: str, server_key: str | None) -> None:
    """SupervisorUnavailable unless ``server_key`` is what ``endpoint`` needs: for tcp://,
    a CURVE public key in Z85 (40 characters, as in supervisor.json)."""
    if not required(endpoint):
        return
    if server_key is None:
        raise SupervisorUnavailable(f"{endpoint} is served with CURVE: the supervisor's "
                                    "server key is needed (server_key in supervisor.json)")
    if len(server_key) != 40 or not set(server_key.encode()) <= _Z85:
        raise SupervisorUnavailable(f"not a CURVE server key (40 Z85 characters): "
                                    f"{server_key!r}")


def client_socket(context: zmq.Context[zmq.Socket[bytes]], endpoint: str,
                  server_key: str | None) -> zmq.Socket[bytes]:
    """A DEALER for ``endpoint``, not yet connected; for tcp://, a CURVE client of
    ``server_key`` with an ephemeral keypair (see ``check_server_key``)."""
    check_server_key(endpoint, server_key)
    sock: zmq.Socket[bytes] = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if server_key is not None and required(endpoint):
        public, secret = zmq.curve_keypair()
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode())
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    return sock


def watch_handshakes(sock: zmq.Socket[bytes]) -> zmq.Socket[bytes] | None:
    """A socket that turns readable when a CURVE handshake of ``sock`` fails (a wrong
    server key, or no CURVE at the other end), so the first request can fail at once
    instead of at its timeout; None for a socket without CURVE. Close it with
    ``stop_watching``."""
    if sock.getsockopt(zmq.MECHANISM) != zmq.CURVE:
        return None
    monitor: zmq.Socket[bytes] = sock.get_monitor_socket(_FAILED_HANDSHAKE)
    monitor.setsockopt(zmq.LINGER, 0)
    return monitor


def stop_watching(sock: zmq.Socket[bytes], monitor: zmq.Socket[bytes] | None) -> None:
    """End ``watch_handshakes``."""
    if monitor is not None:
        sock.disable_monitor()
        monitor.close(0)
