"""Config validation, the private runtime directory, exit reasons and timers."""

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from spec_kit_runtime.errors import ConfigError, SupervisorUnavailable
from spec_kit_runtime.plugins.config import RuntimeConfig, config_from_data, load_config
from spec_kit_runtime.policy.exits import ExitReason
from spec_kit_runtime.policy.timers import Timers
from spec_kit_runtime.wire.rundir import RuntimeDir

REPO = Path(__file__).resolve().parents[1]


def test_default_config_file_loads() -> None:
    config = load_config(REPO / "configs" / "runtime.yaml")
    assert config.plugin_paths == ((REPO / "configs" / "plugins").resolve(),)
    assert config.settings_for("design").config == {"author": "Spec-Kit"}
    assert config.settings_for("unknown").enabled is True
    assert config.request_timeout == RuntimeConfig().request_timeout


@pytest.mark.parametrize(("data", "why"), [
    ([], "must be a mapping"),
    ({"runtim": {}}, "unknown top-level"),
    ({"runtime": {"request_timout": 1}}, "runtime.request_timout"),
    ({"runtime": {"request_timeout": 0}}, "positive number"),
    ({"runtime": {"request_timeout": True}}, "positive number"),
    ({"runtime": {"call_grace": float("nan")}}, "positive number"),
    ({"runtime": {"stop_timeout": float("inf")}}, "positive number"),
    ({"runtime": {"plugin_paths": "plugins"}}, "list of paths"),
    ({"runtime": {"endpoint": "tcp://0.0.0.0:5555"}}, "127.0.0.1"),
    ({"runtime": {"endpoint": "tcp://192.168.1.2:5555"}}, "loopback only"),
    ({"runtime": {"endpoint": "tcp://127.0.0.1:65536"}}, "tcp://127.0.0.1:PORT"),
    ({"runtime": {"endpoint": "tcp://127.0.0.1:http"}}, "tcp://127.0.0.1:PORT"),
    ({"runtime": {"endpoint": "tcp://127.0.0.1:"}}, "tcp://127.0.0.1:PORT"),
    ({"runtime": {"endpoint": "ipc://"}}, "ipc://PATH"),
    ({"runtime": {"endpoint": 5555}}, "ipc://PATH"),
    ({"runtime": {"max_message_bytes": 10}}, "at least 1024"),
    ({"runtime": {"log_level": "LOUD"}}, "DEBUG"),
    ({"plugins": {"Bad Id": {}}}, "not a valid plugin id"),
    ({"plugins": {"design": {"enabled": "yes"}}}, "true or false"),
    ({"plugins": {"design": {"config": [1]}}}, "must be a mapping"),
    ({"plugins": {"design": {"confg": {}}}}, "may only hold"),
    ({"runtime": {"data_dir": 5}}, "runtime.data_dir' must be a path"),
    ({"runtime": {"hardening": []}}, "runtime.hardening' must be a mapping"),
    ({"runtime": {"hardening": {"landlok": True}}}, "unknown key 'landlok'"),
    ({"runtime": {"hardening": {"landlock": "on"}}}, "landlock must be true or false"),
    ({"runtime": {"hardening": {"network_namespace": 1}}}, "network_namespace must be true"),
    ({"runtime": {"hardening": {"worker_user": "no-such-user-here"}}}, "no such user here"),
    ({"runtime": {"hardening": {"worker_user": -1}}}, "a user name or a uid"),
    ({"plugins": {"design": {"hardening": {"worker_user": True}}}},
     "'plugins.design.hardening': worker_user must be null"),
    ({"plugins": {"design": {"grant": ""}}}, r"plugins\.design'\.grant must be a list"),
    ({"plugins": {"design": {"grant": {}}}}, r"plugins\.design'\.grant must be a list"),
    ({"plugins": {"design": {"grant": ["ok:*", "bad pattern"]}}}, r"grant item 1: 'bad"),
    ({"plugins": {"core": {}}}, "not a valid plugin id"),
])
def test_bad_config_is_refused_with_the_key(data: Any, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        config_from_data(data, Path("/etc/x/runtime.yaml"))


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:0", "tcp://127.0.0.1:5555",
                                      "ipc:///run/x/clients.sock"])
def test_endpoints_that_are_allowed(endpoint: str) -> None:
    config = config_from_data({"runtime": {"endpoint": endpoint}}, Path("/etc/x/runtime.yaml"))
    assert config.endpoint == endpoint


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "runtime.yaml"
    path.write_text("runtime: [unclosed")
    with pytest.raises(ConfigError, match=r"runtime\.yaml: malformed YAML"):
        load_config(path)


def test_runtime_dir_is_private_and_locked(tmp_path: Path) -> None:
    rundir = RuntimeDir.prepare(tmp_path / "rt")
    assert (rundir.path.stat().st_mode & 0o777) == 0o700
    fd = rundir.lock()
    try:
        with pytest.raises(ConfigError, match="already runs"):
            rundir.lock()
    finally:
        os.close(fd)
    token = rundir.new_token()
    assert rundir.read_token() == token
    assert (rundir.token_file.stat().st_mode & 0o777) == 0o600
    rundir.write_address("ipc:///x", 123, "ipc:///c")
    assert rundir.read_address() == {"endpoint": "ipc:///x", "pid": 123, "control": "ipc:///c"}
    rundir.remove_address()
    with pytest.raises(SupervisorUnavailable, match="no running supervisor"):
        rundir.read_address()


def test_the_address_file_carries_a_server_key(tmp_path: Path) -> None:
    rundir = RuntimeDir.prepare(tmp_path / "rt")
    key = "k" * 40
    rundir.write_address("tcp://127.0.0.1:5555", 123, "ipc:///c", key)
    assert rundir.read_address()["server_key"] == key
    rundir.address_file.write_text('{"endpoint": "tcp://127.0.0.1:5555", "server_key": 5}')
    with pytest.raises(SupervisorUnavailable, match="malformed"):
        rundir.read_address()


@pytest.mark.parametrize("spoil", ["folder open", "file open", "file a link", "token open"])
def test_a_client_believes_only_a_private_runtime_dir_of_its_own(
        tmp_path: Path, spoil: str) -> None:
    """What another user could have made (a /tmp/spec-kit-runtime-UID before ours, say)
    must not point a client at their supervisor: the folder and both files must be ours,
    private and no links."""
    rundir = RuntimeDir.prepare(tmp_path / "rt")
    rundir.write_address("ipc:///x/clients.sock", 123, "ipc:///x/control.sock")
    rundir.new_token()
    assert rundir.read_address()["pid"] == 123 and len(rundir.read_token()) > 0
    if spoil == "folder open":
        rundir.path.chmod(0o755)
    elif spoil == "file open":
        rundir.address_file.chmod(0o644)
    elif spoil == "token open":
        rundir.token_file.chmod(0o640)
    else:
        real = tmp_path / "elsewhere.json"
        real.write_bytes(rundir.address_file.read_bytes())
        real.chmod(0o600)
        rundir.address_file.unlink()
        rundir.address_file.symlink_to(real)
    with pytest.raises(SupervisorUnavailable):
        rundir.read_token() if spoil == "token open" else rundir.read_address()


def test_a_relative_runtime_dir_gives_absolute_endpoints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients started elsewhere read the endpoints from supervisor.json: they must work."""
    monkeypatch.chdir(tmp_path)
    rundir = RuntimeDir.prepare(Path("rt"))
    assert rundir.path == tmp_path / "rt"
    for endpoint in (rundir.workers_endpoint, rundir.clients_endpoint, rundir.control_endpoint):
        assert endpoint.startswith(f"ipc://{tmp_path}/rt/"), endpoint


def test_runtime_dir_others_can_open_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(ConfigError, match="private"):
        RuntimeDir.prepare(shared)


@pytest.mark.parametrize(("code", "text", "clean"), [
    (0, "exited with code 0", True),
    (3, "exited with code 3", False),
    (-signal.SIGKILL, "killed by SIGKILL", False),
    (-signal.SIGSEGV, "killed by SIGSEGV", False),
])
def test_exit_reasons(code: int, text: str, clean: bool) -> None:
    reason = ExitReason(code)
    assert reason.describe() == text
    assert reason.clean is clean


def test_timers_run_in_order_and_skip_cancelled() -> None:
    timers, fired = Timers(), []
    timers.at(2.0, lambda: fired.append("b"))
    timers.at(1.0, lambda: fired.append("a"))
    timers.at(1.5, lambda: fired.append("x")).cancel()
    assert timers.next_due() == 1.0
    timers.run_due(1.7)
    assert fired == ["a"]
    assert timers.next_due() == 2.0
    timers.run_due(5.0)
    assert fired == ["a", "b"]
    assert timers.next_due() is None


def test_cancelled_timers_do_not_pile_up() -> None:
    timers, fired = Timers(), []
    for i in range(10_000):
        timers.at(1000.0 + i, lambda: None).cancel()  # request deadlines, answered in time
    assert len(timers) < 3000
    timers.at(5.0, lambda: fired.append(1))
    timers.run_due(6.0)
    assert fired == [1]
