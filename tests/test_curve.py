"""A tcp:// clients endpoint is served with CURVE: real supervisors, real loopback sockets.

Our clients (the API, caller handlers, the CLI) connect with the server key from
supervisor.json and are served. Strangers without CURVE, or with a wrong server key, never
complete a handshake, so nothing they send reaches the supervisor, which keeps serving; the
same raw records over a correct handshake are answered, so the test could tell. A relay
that keeps every byte shows neither the payload nor the token crossing in the clear.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq
from spec_kit_contracts import Command, Message, Request
from zmq.utils.monitor import recv_monitor_message

from conftest import GOOD, all_gone, kill_survivors, track, wait_until
from spec_kit_runtime import (
    AuthenticationError,
    ConfigError,
    PluginContainer,
    SupervisorUnavailable,
)
from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.client.launcher import launch_supervisor
from spec_kit_runtime.wire import codec, curve
from spec_kit_runtime.wire.protocol import ClientHello, Control, Record, Reply, Send

pytestmark = pytest.mark.timeout(60)
SILENCE_MS = 300  # how long a refused stranger listens, to be sure no answer comes
_HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                     | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    runtime_dir: Path
    endpoint: str
    server_key: str
    token: bytes
    container: PluginContainer  # attached to it, over tcp://


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``spec-kit-runtime run`` on tcp://127.0.0.1 (any free port) with the good plugins."""
    folder = tmp_path_factory.mktemp("curve")
    config = folder / "runtime.yaml"
    config.write_text(yaml.safe_dump({"runtime": {
        "endpoint": "tcp://127.0.0.1:0", "plugin_paths": [str(GOOD)], "log_level": "WARNING",
        "max_message_bytes": 256 * 1024}}))
    runtime_dir = folder / "run"
    process = launch_supervisor(runtime_dir, config)
    pids = {process.pid}
    try:
        address = json.loads((runtime_dir / "supervisor.json").read_text())
        container = PluginContainer({"attach": True, "runtime_dir": str(runtime_dir)})
        try:
            wait_until(lambda: container.health()["ready"], 30, what="the plugins to start")
            pids |= track(container)
            yield Served(process, runtime_dir, address["endpoint"], address["server_key"],
                         (runtime_dir / "token").read_bytes(), container)
            pids |= track(container)
        finally:
            container.shutdown()  # attached: only disconnects
        with contextlib.closing(SupervisorClient.find(runtime_dir, control=True)) as control:
            control.control("shutdown", timeout=10.0)
        process.wait(timeout=30)
        all_gone(pids, what="the tcp supervisor and its workers")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        kill_survivors(pids)


def handled(served: Served) -> int:
    """Calls the plugins have handled so far (a stranger's Send would count)."""
    return int(served.container.status()["supervisor"]["totals"]["handled"])


def still_serving(served: Served) -> None:
    """The same supervisor answers, and design answers over tcp://."""
    status = served.container.status()
    assert status["supervisor"]["pid"] == served.process.pid
    reply = served.container.send_message(
        "design", Command(command_name="design:generate", arguments=["still", "here"]))
    assert reply["doc"] == "# still here"


# -- our clients -------------------------------------------------------------------------

def test_the_address_file_names_the_bound_port_and_the_server_key(served: Served) -> None:
    port = int(served.endpoint.rpartition(":")[2])
    assert served.endpoint == f"tcp://127.0.0.1:{port}" and port > 0  # port 0: the one bound
    assert len(served.server_key) == 40  # Z85 of a 32-byte public key
    assert served.container.status()["supervisor"]["endpoint"] == served.endpoint
    assert (served.runtime_dir / "supervisor.json").stat().st_mode & 0o777 == 0o600


def test_a_client_sends_reads_status_and_follows_events(served: Served) -> None:
    container = served.container
    before = handled(served)
    reply = container.send_message("design", Command(command_name="design:generate",
                                                     arguments=["over", "curve"]))
    assert reply["doc"] == "# over curve"
    big = "x" * (200 * 1024)  # most of max_message_bytes: CURVE's overhead fits the margin
    reply = container.send_message("design", Command(command_name="design:generate",
                                                     arguments=[big]))
    assert reply["doc"] == "# " + big
    assert handled(served) == before + 2
    assert {p["id"]: p["state"] for p in container.status()["plugins"]} == {
        "design": "active", "audit": "active"}
    with container.follow_events() as events:
        container.restart_plugin("audit")
        for event in events:
            if (event.event_name, event.event_data.get("plugin")) == (
                    "system:plugin_active", "audit"):
                break


def test_a_caller_handler_is_served_over_curve(served: Served) -> None:
    def echo(message: Message) -> dict[str, Any]:
        return {"echo": message.params}

    sub = served.container.subscribe("design", "validator:curve_echo", echo)
    try:
        result = served.container.send_message(
            "design", Request(method="validator:curve_echo", params={"n": 7}))
        assert result == {"echo": {"n": 7}}
    finally:
        assert served.container.unsubscribe(sub)


def test_the_cli_sends_over_curve(served: Served) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "spec_kit_runtime", "send", "design", "command:design:generate",
         "--payload", '{"arguments": ["from", "cli"]}', "--runtime-dir", str(served.runtime_dir)],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["doc"] == "# from cli"


def test_our_client_with_a_wrong_key_fails_at_once(served: Served) -> None:
    wrong = zmq.curve_keypair()[0].decode()
    started = time.monotonic()
    with pytest.raises(AuthenticationError, match=r"CURVE handshake .* failed"):
        SupervisorClient(served.endpoint, served.token, server_key=wrong, connect_timeout=10.0)
    assert time.monotonic() - started < 5.0  # told by the handshake, not by the timeout
    with pytest.raises(SupervisorUnavailable, match="server key is needed"):
        SupervisorClient(served.endpoint, served.token)
    with pytest.raises(SupervisorUnavailable, match="not a CURVE server key"):
        SupervisorClient(served.endpoint, served.token, server_key="short")
    still_serving(served)


def test_an_impostor_on_the_port_never_sees_the_token(served: Served) -> None:
    """A process listening where the client expects the supervisor (a restarted port, a
    squatter) cannot prove the server key: the client stops before sending anything."""
    context = zmq.Context()
    try:
        for encrypted in (False, True):
            impostor = context.socket(zmq.ROUTER)
            impostor.setsockopt(zmq.LINGER, 0)
            if encrypted:  # a CURVE server, but with a key of its own
                impostor.setsockopt(zmq.CURVE_SERVER, 1)
                impostor.setsockopt(zmq.CURVE_SECRETKEY, zmq.curve_keypair()[1])
            impostor.bind("tcp://127.0.0.1:0")
            endpoint = impostor.getsockopt_string(zmq.LAST_ENDPOINT)
            with pytest.raises(AuthenticationError, match="CURVE handshake"):
                SupervisorClient(endpoint, served.token, server_key=served.server_key)
            assert not impostor.poll(SILENCE_MS)
            impostor.close(0)
    finally:
        context.term()


# -- strangers on the tcp endpoint -------------------------------------------------------

def stranger(endpoint: str, server_key: str | None, records: list[Record]
             ) -> tuple[int, list[Record]]:
    """A raw DEALER (a CURVE client of ``server_key``, or plain) sends ``records``: its
    first handshake event, and whatever comes back."""
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if server_key is not None:
        public, secret = zmq.curve_keypair()
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode())
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    monitor = sock.get_monitor_socket(_HANDSHAKE_EVENTS)
    try:
        sock.connect(endpoint)
        for record in records:
            sock.send(codec.encode(record))
        assert monitor.poll(10_000), "no handshake event"
        event = int(recv_monitor_message(monitor)["event"])
        answers = []
        wait = 5000 if event == zmq.EVENT_HANDSHAKE_SUCCEEDED else SILENCE_MS
        while len(answers) < len(records) and sock.poll(wait):
            answers.append(codec.decode(sock.recv()))
        return event, answers
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        context.term()


def generate(cid: int, word: str) -> Send:
    body = codec.pack_message(Command(command_name="design:generate", arguments=[word]))
    return Send(cid, "command:design:generate", "design", 5.0, body)


def test_the_same_raw_records_over_a_correct_handshake_are_served(served: Served) -> None:
    """The control case of the two below: their records would be answered and counted."""
    before = handled(served)
    event, answers = stranger(served.endpoint, served.server_key,
                              [ClientHello(served.token), generate(2, "raw")])
    assert event == zmq.EVENT_HANDSHAKE_SUCCEEDED
    assert [(type(a), getattr(a, "cid", None), getattr(a, "ok", None)) for a in answers] == [
        (Reply, 0, True), (Reply, 2, True)]
    assert isinstance(answers[1], Reply)
    assert codec.unpack_value(answers[1].body)["doc"] == "# raw"
    assert handled(served) == before + 1


@pytest.mark.parametrize("key", ["none", "wrong"])
def test_a_stranger_without_the_server_key_gets_nowhere(served: Served, key: str) -> None:
    """Even with the right token, and asking for a shutdown: nothing reaches the doors."""
    before = handled(served)
    server_key = None if key == "none" else zmq.curve_keypair()[0].decode()
    shutdown = Control(3, "shutdown", codec.pack_value({}))
    event, answers = stranger(served.endpoint, server_key,
                              [ClientHello(served.token), generate(2, "stranger"), shutdown])
    assert event != zmq.EVENT_HANDSHAKE_SUCCEEDED
    assert answers == []
    assert handled(served) == before  # its Send never reached a plugin
    still_serving(served)  # nor its shutdown the supervisor


def test_many_strangers_at_once_leave_the_supervisor_serving(served: Served) -> None:
    context = zmq.Context()
    try:
        for index in range(60):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if index % 2:
                public, secret = zmq.curve_keypair()
                sock.setsockopt(zmq.CURVE_SERVERKEY, zmq.curve_keypair()[0])
                sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
                sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
            sock.connect(served.endpoint)
            sock.send(codec.encode(ClientHello(served.token)))
        started = time.monotonic()
        still_serving(served)
        assert time.monotonic() - started < 5.0
    finally:
        context.destroy(linger=0)


# -- on the wire -------------------------------------------------------------------------

class Tap:
    """A TCP relay to ``port`` on loopback that keeps a copy of every byte, both ways."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        self._seen = bytearray()
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = socket.socketpair()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    @property
    def seen(self) -> bytes:
        with self._lock:
            return bytes(self._seen)

    def _relay(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        try:
            while True:
                for key, _ in selector.select():
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._wake_read:
                        return
                    if sock is self._listener:
                        inner, _ = sock.accept()
                        outer = socket.create_connection(("127.0.0.1", self._target))
                        peers[inner], peers[outer] = outer, inner
                        for end in (inner, outer):
                            selector.register(end, selectors.EVENT_READ)
                        continue
                    data = sock.recv(65536) if sock in peers else b""
                    if data:
                        with self._lock:
                            self._seen += data
                        peers[sock].sendall(data)
                    elif sock in peers:
                        other = peers.pop(sock)
                        peers.pop(other, None)
                        for end in (sock, other):
                            selector.unregister(end)
                            end.close()
        finally:
            for end in peers:
                end.close()
            selector.close()

    def close(self) -> None:
        self._wake_write.send(b"x")
        self._thread.join(10)
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()


@pytest.fixture
def tap_to() -> Iterator[Any]:
    taps: list[Tap] = []

    def make(port: int) -> Tap:
        taps.append(Tap(port))
        return taps[-1]

    yield make
    for tap in taps:
        tap.close()


def test_the_tap_sees_plain_zeromq_in_the_clear(tap_to: Any) -> None:
    """The control case: without CURVE, the tap would see the payload."""
    context = zmq.Context()
    try:
        server = context.socket(zmq.ROUTER)
        server.bind("tcp://127.0.0.1:0")
        port = int(server.getsockopt_string(zmq.LAST_ENDPOINT).rpartition(":")[2])
        tap = tap_to(port)
        client = context.socket(zmq.DEALER)
        client.connect(tap.endpoint)
        client.send(b"needle-in-the-clear")
        assert server.poll(5000)
        assert server.recv_multipart()[1] == b"needle-in-the-clear"
        assert b"needle-in-the-clear" in tap.seen
    finally:
        context.destroy(linger=0)


def test_neither_the_payload_nor_the_token_crosses_in_the_clear(served: Served,
                                                                 tap_to: Any) -> None:
    tap = tap_to(int(served.endpoint.rpartition(":")[2]))
    needle = "needle-" + os.urandom(8).hex()
    with contextlib.closing(SupervisorClient(tap.endpoint, served.token,
                                             server_key=served.server_key)) as client:
        reply = client.send(Command(command_name="design:generate", arguments=[needle]),
                            as_plugin="design")
    assert reply["doc"] == "# " + needle  # it went through the tap, both ways
    seen = tap.seen
    assert len(seen) > 2 * len(needle)
    assert needle.encode() not in seen
    assert served.token not in seen
    assert b"design:generate" not in seen


# -- config errors -----------------------------------------------------------------------

def test_a_busy_port_fails_the_start_clearly(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        config = tmp_path / "runtime.yaml"
        config.write_text(yaml.safe_dump({"runtime": {"endpoint": f"tcp://127.0.0.1:{port}"}}))
        done = subprocess.run(
            [sys.executable, "-m", "spec_kit_runtime", "run", "--config", str(config),
             "--runtime-dir", str(tmp_path / "run"), "--for", "5"],
            capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert (f"error: cannot listen on tcp://127.0.0.1:{port}: Address already in use"
            in done.stderr)


def test_without_curve_in_libzmq_tcp_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """libzmq here has CURVE; its absence is played by zmq.has, the only stand-in here."""
    monkeypatch.setattr(zmq, "has", lambda capability: capability != "curve")
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    try:
        with pytest.raises(ConfigError, match="no CURVE: use an ipc:// endpoint"):
            curve.make_server(sock)
        assert sock.getsockopt(zmq.MECHANISM) == zmq.NULL
    finally:
        sock.close(0)
        context.term()
