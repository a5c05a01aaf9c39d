"""Strangers on the supervisor's sockets: refused, and unable to disturb anybody.

A raw ZeroMQ DEALER plays the stranger: no token, a wrong token, a forged worker Hello,
and garbage frames of every shape. Afterwards the supervisor still answers and the
plugin still works, in the same worker process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from spec_kit_contracts import Command

from conftest import DATA_HOME, GOOD, data_folder, plugin_pids, running_container, track
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import (
    PROTOCOL_VERSION,
    Call,
    ClientHello,
    Control,
    Exited,
    Hello,
    Record,
    Reply,
    Send,
    Signal,
    Spawn,
    Stop,
    Subscribe,
)

pytestmark = pytest.mark.timeout(30)
MAX_MESSAGE = 64 * 1024
SILENCE_MS = 200  # how long a refused stranger waits to make sure no answer comes


@dataclass
class Target:
    container: PluginContainer
    runtime_dir: Path
    clients: str
    workers: str


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with running_container(max_message_bytes=MAX_MESSAGE) as container:
        container.discover_plugins([GOOD])
        container.load_plugin(container.discovered_plugins["design"], config={})
        container.activate_plugin("design")
        track(container)
        endpoint = container.status()["supervisor"]["endpoint"]
        assert endpoint.startswith("ipc://")
        runtime_dir = Path(endpoint.removeprefix("ipc://")).parent
        address = json.loads((runtime_dir / "supervisor.json").read_text())
        assert address["endpoint"] == endpoint
        yield Target(container, runtime_dir, endpoint, f"ipc://{runtime_dir / 'workers.sock'}")


def ask(sock: zmq.Socket[bytes], record: Record, timeout_ms: int = 5000) -> Record | None:
    """Send one record and return the answer to it (None: silence).

    Replies to other requests (earlier garbage that happened to be well-formed) are
    skipped; anything else that arrives is returned, so the caller sees it.
    """
    sock.send(codec.encode(record))
    cid = getattr(record, "cid", 0)
    while sock.poll(timeout_ms):
        received = codec.decode(sock.recv())
        if not isinstance(received, Reply) or received.cid == cid:
            return received
    return None


def error_code(reply: Record | None) -> str:
    assert isinstance(reply, Reply), reply
    assert reply.ok is False
    value = codec.unpack_value(reply.body)
    return str(value["code"])


def healthy(target: Target, design_pid: int) -> None:
    """The supervisor answers, and design answers from the same worker process."""
    status = target.container.status()
    assert [(p["id"], p["state"], p["pid"]) for p in status["plugins"]] == [
        ("design", "active", design_pid)]
    result = target.container.send_message(
        "design", Command(command_name="design:generate", arguments=["fine"]))
    assert result["doc"] == "# fine"


STATUS = Control(7, "status", codec.pack_value({}))


# -- the client socket ---------------------------------------------------------------------

def test_runtime_dir_and_token_are_private(target: Target) -> None:
    assert stat.S_IMODE(target.runtime_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((target.runtime_dir / "token").stat().st_mode) == 0o600


def test_client_without_token_is_refused(target: Target, stranger: Any) -> None:
    design_pid = plugin_pids(target.container)["design"]
    sock = stranger(target.clients)
    assert error_code(ask(sock, STATUS)) == "auth"
    send = Send(8, "command:design:generate", "design", 2.0,
                codec.pack_message(Command(command_name="design:generate", arguments=["x"])))
    assert error_code(ask(sock, send)) == "auth"
    shutdown = Control(9, "shutdown", codec.pack_value({}))
    assert error_code(ask(sock, shutdown)) == "auth"
    healthy(target, design_pid)


def test_client_with_wrong_token_is_refused(target: Target, stranger: Any) -> None:
    design_pid = plugin_pids(target.container)["design"]
    sock = stranger(target.clients)
    real = (target.runtime_dir / "token").read_bytes()
    for wrong in (b"", b"x" * len(real), real[:-1], real + b"!"):
        assert error_code(ask(sock, ClientHello(wrong))) == "auth"
        assert error_code(ask(sock, STATUS)) == "auth"
    healthy(target, design_pid)


def test_client_with_the_token_is_served(target: Target, stranger: Any) -> None:
    """The control case: the same raw socket with the right token gets answers."""
    sock = stranger(target.clients)
    hello = ask(sock, ClientHello((target.runtime_dir / "token").read_bytes()))
    assert isinstance(hello, Reply) and hello.ok
    reply = ask(sock, STATUS)
    assert isinstance(reply, Reply) and reply.ok and reply.cid == STATUS.cid
    expected = target.container.status()["supervisor"]["pid"]
    assert codec.unpack_value(reply.body)["supervisor"]["pid"] == expected


def test_fork_server_records_on_the_sockets_do_nothing(target: Target, stranger: Any) -> None:
    """Signal and Spawn are for the fork server's private socketpair only."""
    design_pid = plugin_pids(target.container)["design"]
    token = (target.runtime_dir / "token").read_bytes()
    client = stranger(target.clients)
    hello = ask(client, ClientHello(token))
    assert isinstance(hello, Reply) and hello.ok
    worker = stranger(target.workers)
    for sock in (client, worker):
        for record in (Signal(design_pid, signal.SIGKILL), Spawn(1, "fork", b"\x80"),
                       Exited(design_pid, 0, 0)):
            assert ask(sock, record, SILENCE_MS) is None
    healthy(target, design_pid)


# -- the worker socket ---------------------------------------------------------------------

def test_forged_worker_hello_is_not_registered(target: Target, stranger: Any) -> None:
    design_pid = plugin_pids(target.container)["design"]
    forged = [
        Hello("design", design_pid, os.urandom(32)),  # the real pid, a guessed secret
        Hello("design", design_pid, b""),
        Hello("design", os.getpid(), os.urandom(32)),  # our own pid
        Hello("ghost", os.getpid(), os.urandom(32)),  # a plugin nobody loaded
    ]
    for hello in forged:
        sock = stranger(target.workers)
        assert ask(sock, hello, SILENCE_MS) is None
        # Not identified: nothing it sends is acted upon.
        sock.send(codec.encode(Subscribe(1, "command:design:generate", 0, "command")))
        body = codec.pack_message(Command(command_name="design:generate", arguments=["x"]))
        assert ask(sock, Send(2, "command:design:generate", "", 1.0, body), SILENCE_MS) is None
    healthy(target, design_pid)
    (entry,) = target.container.status()["plugins"]
    assert entry["subscriptions"].count("command:design:generate") == 1


def test_client_records_on_the_worker_socket_are_ignored(target: Target, stranger: Any) -> None:
    design_pid = plugin_pids(target.container)["design"]
    sock = stranger(target.workers)
    token = (target.runtime_dir / "token").read_bytes()
    assert ask(sock, ClientHello(token), SILENCE_MS) is None
    assert ask(sock, STATUS, SILENCE_MS) is None
    healthy(target, design_pid)


# -- garbage -------------------------------------------------------------------------------

def _header(*fields: Any) -> bytes:
    header: bytes = msgpack.packb(list(fields))
    return len(header).to_bytes(2, "big") + header


def garbage_messages() -> list[list[bytes]]:
    rng = random.Random(20261125)
    single = [
        b"",
        b"\x00",
        b"\xff\xff",  # header length runs past the frame
        b"\xff\xff" + b"x" * 100,
        b"\x00\x00",  # empty header
        b"\x00\x05\xc1\xc1\xc1\xc1\xc1",  # msgpack's reserved byte
        _header("not a list"),
        _header(PROTOCOL_VERSION),
        _header(PROTOCOL_VERSION + 1, ClientHello.KIND, b"t"),  # another protocol version
        _header(PROTOCOL_VERSION, 99),  # unknown kind
        _header(PROTOCOL_VERSION, Control.KIND, "seven", "status"),  # wrong field types
        _header(PROTOCOL_VERSION, Control.KIND, 7),  # missing fields
        _header(PROTOCOL_VERSION, Stop.KIND) + b"trailing",
        _header(PROTOCOL_VERSION, Control.KIND, 7, "status") + b"\xc1 not msgpack",
        _header(PROTOCOL_VERSION, Control.KIND, 7, "no-such-op") + codec.pack_value({}),
        _header(PROTOCOL_VERSION, Control.KIND, 2**64 - 1, "status"),
        _header(PROTOCOL_VERSION, Control.KIND, -(2**63), "status"),
        codec.encode(Stop()),
        codec.encode(Reply(1, True, b"\x01")),
        codec.encode(Call(1, 1, "command:design:generate", "x", b"")),
        b"\x00\x10" + bytes(range(16)) * 4,
        *(rng.randbytes(rng.randint(1, 512)) for _ in range(40)),
    ]
    multi = [[b"a", b"b"], [b"", b"", b""], [codec.encode(STATUS), b"extra"],
             [b"x"] * 20]
    huge = [[b"\x00\x02" + b"\x92\x01" + b"z" * (4 * MAX_MESSAGE)]]
    return [[frame] for frame in single] + multi + huge


@pytest.mark.parametrize("socket_name", ["clients", "workers"])
def test_garbage_frames_change_nothing(target: Target, stranger: Any, socket_name: str) -> None:
    design_pid = plugin_pids(target.container)["design"]
    endpoint = target.clients if socket_name == "clients" else target.workers
    for frames in garbage_messages():
        sock = stranger(endpoint)  # a fresh peer each time: a huge frame drops its peer
        sock.send_multipart(frames)
    token = (target.runtime_dir / "token").read_bytes()
    if socket_name == "clients":
        # Garbage on one connection (it is no longer heard: test_offences_live), then a
        # proper client on one more connection: it is served.
        for frames in garbage_messages()[:-1]:
            stranger(target.clients).send_multipart(frames)
        sock = stranger(target.clients)
        hello = ask(sock, ClientHello(token))
        assert isinstance(hello, Reply) and hello.ok, hello
        reply = ask(sock, STATUS)
        assert isinstance(reply, Reply) and reply.ok
    healthy(target, design_pid)
    healthy(target, design_pid)


def test_garbage_on_an_authenticated_connection_is_answered_or_dropped(
        target: Target, stranger: Any) -> None:
    """Malformed Controls from a trusted client get error replies; the connection lives."""
    design_pid = plugin_pids(target.container)["design"]
    sock = stranger(target.clients)
    hello = ask(sock, ClientHello((target.runtime_dir / "token").read_bytes()))
    assert isinstance(hello, Reply) and hello.ok
    assert error_code(ask(sock, Control(11, "no-such-op", codec.pack_value({})))) == "protocol"
    assert error_code(ask(sock, Control(12, "status", b"\xc1"))) == "protocol"
    assert error_code(ask(sock, Control(13, "load", codec.pack_value([1, 2])))) == "protocol"
    bad_send = Send(14, "command:design:generate", "design", 1.0, b"\xc1\xc1")
    assert error_code(ask(sock, bad_send)) in {"protocol", "handler"}
    reply = ask(sock, STATUS)
    assert isinstance(reply, Reply) and reply.ok
    healthy(target, design_pid)


def test_a_pickled_message_body_is_refused_not_unpickled(target: Target, stranger: Any) -> None:
    """The body is a pickle whose loading would create a file where design's worker may
    write (its data folder): nothing on the way (supervisor, worker) may load it."""
    import pickle

    marker = data_folder(DATA_HOME / "spec-kit-runtime", "design") / "unpickled"

    class Detonator:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    design_pid = plugin_pids(target.container)["design"]
    sock = stranger(target.clients)
    hello = ask(sock, ClientHello((target.runtime_dir / "token").read_bytes()))
    assert isinstance(hello, Reply) and hello.ok
    body = pickle.dumps(Detonator())
    reply = ask(sock, Send(21, "command:design:generate", "design", 2.0, body))
    assert error_code(reply) == "protocol"
    assert not marker.exists()
    healthy(target, design_pid)
