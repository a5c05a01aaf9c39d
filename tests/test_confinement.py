"""The OS confinement of workers against a hostile trusted plugin (no Python sandbox to stop
it): each attempt fails with its layer on, and the same attempt by the same plugin gets
through with only that layer off, so that layer is what stops it. Real workers, real
sockets, the real kernel; status says which layers each worker runs under."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command

from conftest import (
    PLUGINS,
    copy_plugin,
    data_folder,
    landlock_support,
    load_active,
    plugin_entry,
    running_container,
    runtime_dir_of,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.linux.hardening import kernel_flags

pytestmark = pytest.mark.timeout(60)
INTRUDER = PLUGINS / "rogue" / "intruder"
ABI, NO_LANDLOCK = landlock_support()
needs_landlock = pytest.mark.skipif(ABI < 1, reason=NO_LANDLOCK)
needs_tcp_rules = pytest.mark.skipif(ABI < 4, reason=f"Landlock ABI {ABI}: no TCP rules (4+)")
needs_scopes = pytest.mark.skipif(ABI < 6, reason=f"Landlock ABI {ABI}: no scopes (6+)")
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="dropping to another uid needs root")


def attempt(container: PluginContainer, what: str, **options: Any) -> dict[str, Any]:
    """The intruder's outcome of ``what``: {"ok": True, "result": ...} or the error."""
    outcome: dict[str, Any] = container.send_message(
        "intruder", Command(command_name=f"intruder:{what}", options=options))
    return outcome


def denied(outcome: dict[str, Any], code: str = "EACCES") -> bool:
    return outcome["ok"] is False and outcome["errno"] == code


@contextlib.contextmanager
def intruder(root: Path, manifest: dict[str, Any] | None = None,
             **settings: Any) -> Iterator[PluginContainer]:
    """A container running a copy of the intruder from ``root``, data in ``root/data``."""
    copy_plugin(INTRUDER, root / "plugins", "intruder", **(manifest or {}))
    with running_container(data_dir=str(root / "data"), **settings) as container:
        load_active(container, root / "plugins", "intruder")
        yield container


@contextlib.contextmanager
def listener(family: socket.AddressFamily, address: Any) -> Iterator[tuple[Any, list[Any]]]:
    """A server that greets whoever connects with "hello"; yields its address and the
    connections it accepted."""
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind(address)
    server.listen()
    server.settimeout(0.1)
    accepted: list[Any] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                peer, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(peer)
            with peer:
                peer.sendall(b"hello")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield server.getsockname(), accepted
    finally:
        stop.set()
        thread.join(5)
        server.close()


@needs_landlock
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_landlock_keeps_the_plugin_to_its_folders(tmp_path: Path, start_method: str) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret")
    with intruder(tmp_path, start_method=start_method) as container:
        token = runtime_dir_of(container) / "token"
        data = data_folder(tmp_path / "data", "intruder")
        plugin = tmp_path / "plugins" / "intruder"
        assert denied(attempt(container, "read", path=str(secret)))
        assert denied(attempt(container, "read", path=str(token)))
        assert denied(attempt(container, "listdir", path=str(tmp_path)))
        assert denied(attempt(container, "write", path=str(tmp_path / "dropped")))
        assert denied(attempt(container, "write", path=str(plugin / "dropped")))  # read-only
        assert not (tmp_path / "dropped").exists() and not (plugin / "dropped").exists()
        # What it may: read its own folder, write its data folder (its working directory),
        # start the interpreter.
        assert attempt(container, "read", path=str(plugin / "plugin.json"))["ok"]
        assert attempt(container, "write", path="notes.txt", text="mine")["ok"]
        assert attempt(container, "write", path=str(data / "more.txt"))["ok"]
        assert (data / "notes.txt").read_text() == "mine"
        assert attempt(container, "whoami")["result"]["cwd"] == str(data)
        assert attempt(container, "tempdir")["result"] == str(data)  # /tmp is closed
        assert attempt(container, "python")["result"] == "child ran"
        hardening = plugin_entry(container, "intruder")["hardening"]
        assert hardening["landlock"] is True
        assert "landlock" not in hardening["reasons"]


def test_without_landlock_the_same_plugin_gets_through(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret")
    with intruder(tmp_path, hardening={"landlock": False}) as container:
        token = runtime_dir_of(container) / "token"
        assert attempt(container, "read", path=str(secret))["result"] == b"root:$6$secret"
        assert attempt(container, "read", path=str(token))["result"] == token.read_bytes()
        assert attempt(container, "write", path=str(tmp_path / "dropped"))["ok"]
        assert (tmp_path / "dropped").exists()
        hardening = plugin_entry(container, "intruder")["hardening"]
        assert hardening["landlock"] is False
        assert hardening["reasons"]["landlock"] == "off in the config (hardening.landlock)"


@pytest.mark.parametrize(("hardening", "stopped_by"), [
    pytest.param({"landlock": False}, "ENETUNREACH", id="network namespace"),
    pytest.param({"network_namespace": False}, "EACCES", id="landlock",
                 marks=needs_tcp_rules),
    pytest.param({"landlock": False, "network_namespace": False}, None, id="neither"),
])
def test_no_tcp_for_a_plugin_that_does_not_ask_for_network(
        tmp_path: Path, hardening: dict[str, bool], stopped_by: str | None) -> None:
    with listener(socket.AF_INET, ("127.0.0.1", 0)) as ((host, port), accepted), \
            intruder(tmp_path, hardening=hardening) as container:
        outcome = attempt(container, "tcp", host=host, port=port)
        own_network = plugin_entry(container, "intruder")["hardening"]["own_network"]
        if stopped_by is None:
            assert outcome == {"ok": True, "result": "hello"}
            assert len(accepted) == 1
        else:
            assert denied(outcome, stopped_by), outcome
            assert accepted == []
        assert own_network is (hardening.get("network_namespace", True))


def test_a_plugin_that_asks_for_network_gets_it(tmp_path: Path) -> None:
    """Both layers on: no namespace, no TCP rules; names resolve (Landlock lets it read
    /etc/hosts and the resolver's files)."""
    with listener(socket.AF_INET, ("127.0.0.1", 0)) as ((_, port), accepted), \
            intruder(tmp_path, manifest={"network": True}) as container:
        assert attempt(container, "tcp", host="localhost", port=port) == {
            "ok": True, "result": "hello"}
        assert len(accepted) == 1
        hardening = plugin_entry(container, "intruder")["hardening"]
        assert (hardening["own_network"], hardening["landlock"]) == (False, ABI > 0)
        assert hardening["reasons"]["own_network"] == "the manifest asks for network"


@needs_scopes
@pytest.mark.parametrize("landlock_on", [True, False])
def test_no_signals_to_the_supervisor_or_other_workers(tmp_path: Path,
                                                       landlock_on: bool) -> None:
    with intruder(tmp_path, hardening={"landlock": landlock_on}) as container:
        load_active(container, PLUGINS / "crash" / "crashy", "crashy")
        others = {"supervisor": container.status()["supervisor"]["pid"],
                  "fork server": container.status()["supervisor"]["forkserver_pid"],
                  "another worker": plugin_entry(container, "crashy")["pid"]}
        for whom, pid in others.items():  # SIGURG: ignored by all of them, if it arrives
            outcome = attempt(container, "kill", pid=pid, signal=int(signal.SIGURG))
            assert denied(outcome, "EPERM") is landlock_on, (whom, outcome)
        own = attempt(container, "whoami")  # and the worker lives on
        assert own["ok"]


@needs_scopes
@pytest.mark.parametrize(("hardening", "stopped_by"), [
    pytest.param({"network_namespace": False}, "EPERM", id="landlock"),
    pytest.param({"landlock": False}, "ECONNREFUSED", id="network namespace"),
    pytest.param({"landlock": False, "network_namespace": False}, None, id="neither"),
])
def test_no_abstract_unix_sockets_of_others(tmp_path: Path, hardening: dict[str, bool],
                                            stopped_by: str | None) -> None:
    """Abstract unix sockets have no file, so no file rule or permission covers them: the
    Landlock scope does, and the network namespace (they live in one)."""
    name = f"spec-kit-test-{os.getpid()}-{id(tmp_path)}"
    with listener(socket.AF_UNIX, "\0" + name) as (_, accepted), \
            intruder(tmp_path, hardening=hardening) as container:
        outcome = attempt(container, "abstract", name=name)
        if stopped_by is None:
            assert outcome == {"ok": True, "result": "hello"}
        else:
            assert denied(outcome, stopped_by), outcome
            assert accepted == []


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A folder another uid may read (pytest's own tmp folders are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="spec-kit-confinement-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


@needs_root
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
@pytest.mark.parametrize("worker_user", ["nobody", None])
def test_a_worker_user_keeps_the_plugin_from_the_supervisors_files(
        shared_root: Path, start_method: str, worker_user: str | None) -> None:
    """Landlock off: only the uid stands between the plugin and the token, the signals."""
    nobody = pwd.getpwnam("nobody")
    hardening = {"landlock": False, "worker_user": worker_user}
    with intruder(shared_root, start_method=start_method, hardening=hardening) as container:
        entry = plugin_entry(container, "intruder")
        token = runtime_dir_of(container) / "token"
        data = data_folder(shared_root / "data", "intruder")
        supervisor = container.status()["supervisor"]["pid"]
        read_token = attempt(container, "read", path=str(token))
        signal_supervisor = attempt(container, "kill", pid=supervisor, signal=int(signal.SIGURG))
        who = attempt(container, "whoami")["result"]
        if worker_user is None:
            assert read_token["result"] == token.read_bytes()
            assert signal_supervisor["ok"]
            assert entry["hardening"]["own_uid"] is False
            assert who["uid"] == 0
            return
        assert denied(read_token)
        assert denied(signal_supervisor, "EPERM")
        assert (who["uid"], who["gid"]) == (nobody.pw_uid, nobody.pw_gid)
        assert kernel_flags(entry["pid"])["uid"] == nobody.pw_uid
        assert (entry["hardening"]["own_uid"], entry["hardening"]["uid"]) == (
            True, nobody.pw_uid)
        info = data.stat()  # its data folder is its own, by path too
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (nobody.pw_uid, 0o700)
        assert attempt(container, "write", path=str(data / "notes.txt"))["ok"]
        assert (data / "notes.txt").stat().st_uid == nobody.pw_uid
