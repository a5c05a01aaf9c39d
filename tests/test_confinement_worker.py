"""The worker's confinement steps in a forked child of the test, as the fork server's child
runs them: a network namespace without privileges, and the supervisor's socket reached and
reconnected to under every layer at once."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from conftest import landlock_support
from spec_kit_runtime.plugins.data_dir import plugin_data_dir
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_runtime.wire.rundir import RuntimeDir
from spec_kit_worker.confinement.layers import drop_to, own_network, reach, ruleset
from spec_kit_worker.confinement.prctl import PR_SET_NO_NEW_PRIVS, prctl

pytestmark = pytest.mark.timeout(30)
PR_SET_DUMPABLE = 4
NOBODY = pwd.getpwnam("nobody")


@contextlib.contextmanager
def child(body: Callable[[], dict[str, Any]]) -> Iterator[Callable[[], dict[str, Any]]]:
    """Run ``body`` in a forked child; yields a function that waits for its JSON answer.

    The child never returns into pytest, and is killed if it outlives the test.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            answer = body()
            os.write(write_fd, json.dumps(answer).encode())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_fd)

    def answer() -> dict[str, Any]:
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        assert data, "the child died without an answer"
        result: dict[str, Any] = json.loads(data)
        return result

    try:
        yield answer
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def unprivileged() -> None:
    """Become nobody, if we are root: the test is about a worker without privileges, one of
    a supervisor that never had any (so dumpable, unlike a process whose uid changed)."""
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)
        prctl(PR_SET_DUMPABLE, 1)


def test_without_privileges_a_worker_gets_its_network_namespace_in_a_user_namespace() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def body() -> dict[str, Any]:
        unprivileged()
        before = os.readlink("/proc/self/ns/net")
        made = own_network()
        with open("/proc/self/status") as status:
            caps = [line.split()[1] for line in status if line.startswith("CapEff")]
        try:  # not create_connection: its getaddrinfo imports a codec nobody may read here
            with socket.socket() as sock:
                sock.settimeout(2)
                sock.connect(("127.0.0.1", port))
            tcp = "connected"
        except OSError as exc:
            tcp = os.strerror(exc.errno or 0)
        return {"made": made, "moved": os.readlink("/proc/self/ns/net") != before,
                "uid": os.getuid(), "caps": caps[0], "tcp": tcp}

    try:
        with child(body) as answer:
            result = answer()
    finally:
        server.close()
    if result["made"] is not True:
        pytest.skip(f"this kernel refuses it: {result['made']}")
    assert result["moved"] is True
    assert result["uid"] == (NOBODY.pw_uid if os.getuid() == 0 else os.getuid())
    assert int(result["caps"], 16) == 0  # none of the new user namespace's capabilities
    assert result["tcp"] == os.strerror(101)  # ENETUNREACH: nothing is up in there


def test_the_supervisors_socket_is_reached_and_reconnected_to_under_every_layer(
        tmp_path: Path) -> None:
    """A frame over the receiver's limit makes ZeroMQ drop the connection; the worker's
    socket connects again, through its descriptor, as another uid, without network, under
    Landlock."""
    rundir = RuntimeDir.prepare(tmp_path / "run")
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.MAXMSGSIZE, 1000)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(rundir.workers_endpoint)
    rundir.share_workers_socket()
    root = os.getuid() == 0
    owner = (NOBODY.pw_uid, NOBODY.pw_gid) if root else None
    boot = Bootstrap(
        endpoint=rundir.workers_endpoint, plugin_id="p", secret=b"s" * 32,
        parent_pid=os.getpid(), plugin_file=__file__, entry_point="P", sandbox=False, scope=(),
        max_message_bytes=1 << 20, request_timeout=1.0, memory_mb=None, cpu_seconds=None,
        open_files=None, cgroups=(), plugin_dir=str(tmp_path),
        data_dir=str(plugin_data_dir(tmp_path / "data", "p", owner)),
        landlock=True, network=False, own_network=True, uid=None, gid=None)
    has_landlock = landlock_support()[0] > 0

    def body() -> dict[str, Any]:
        made = own_network()
        endpoint = reach(boot.endpoint)
        rules = ruleset(boot)
        if owner is not None:
            drop_to(*owner, os.getppid())
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if not isinstance(rules, str):
            rules.enforce()
        worker = zmq.Context()
        dealer = worker.socket(zmq.DEALER)
        dealer.setsockopt(zmq.RECONNECT_IVL, 10)
        dealer.connect(endpoint)
        dealer.send(b"first")
        dealer.send(b"x" * 5000)  # over the router's limit: it drops the connection
        welcomed = False
        for _ in range(200):  # until the router answers on the new connection
            dealer.send(b"again")
            if dealer.poll(50):
                welcomed = dealer.recv() == b"welcome back"
                break
        dealer.close(linger=0)
        worker.term()
        return {"made": made, "landlock": not isinstance(rules, str), "uid": os.getuid(),
                "welcomed": welcomed}

    try:
        with child(body) as answer:
            assert router.poll(10_000), "the worker never connected"
            first, text = router.recv_multipart()
            assert text == b"first"
            while True:
                assert router.poll(10_000), "the worker never connected again"
                again, text = router.recv_multipart()
                if again != first:  # a new connection
                    break
            router.send_multipart([again, b"welcome back"])
            result = answer()
    finally:
        router.close()
        context.term()
    assert result["welcomed"] is True
    assert result["made"] is True
    assert result["landlock"] is has_landlock
    assert result["uid"] == (NOBODY.pw_uid if root else os.getuid())
