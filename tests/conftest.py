"""Shared fixtures for the tests that run real supervisors, workers and sockets.

Every process a test starts is accounted for: containers are shut down in teardown, and
each pid they reported is checked dead afterwards (and once more at the end of the
session). Waiting is always on a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import zmq
from hypothesis import HealthCheck, settings

from spec_kit_runtime import PluginContainer
from spec_kit_worker.confinement import landlock

# Property tests share two cores with live supervisors: judge them by their findings, not speed.
settings.register_profile("shared-machine", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")

PLUGINS = Path(__file__).parent / "plugins"
GOOD = PLUGINS / "good"
T = TypeVar("T")

# Every supervisor and worker pid a test saw: all must be gone by the end of the session.
_SEEN_PIDS: set[int] = set()
# Where the supervisors started here keep plugins' data folders (runtime.data_dir's default,
# inherited): not in the user's own home.
DATA_HOME = Path(tempfile.mkdtemp(prefix="spec-kit-runtime-test-data-"))
os.environ["XDG_DATA_HOME"] = str(DATA_HOME)
# And where private supervisors write their logs (private_logs.py): not in the user's home.
STATE_HOME = Path(tempfile.mkdtemp(prefix="spec-kit-runtime-test-state-"))
os.environ["XDG_STATE_HOME"] = str(STATE_HOME)


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01,
               what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def all_gone(pids: set[int], timeout: float = 5.0, what: str = "processes") -> None:
    """Wait until none of ``pids`` runs (fails naming the survivors)."""
    try:
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout, what=f"{what} to exit")
    except AssertionError:
        survivors = sorted(p for p in pids if pid_alive(p))
        raise AssertionError(f"{what} still running after {timeout:g}s: {survivors}") from None


def kill_survivors(pids: set[int]) -> None:
    """SIGKILL whichever of ``pids`` still runs (cleanup after a failed orphan check)."""
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def plugin_pids(container: PluginContainer) -> dict[str, int]:
    """Worker pid of every plugin that has a running worker."""
    return {p["id"]: p["pid"] for p in container.status()["plugins"] if p["pid"]}


def track(container: PluginContainer) -> set[int]:
    """Remember the supervisor's, the fork server's and the workers' pids; returns them."""
    status = container.status()
    pids = {status["supervisor"]["pid"], *(p["pid"] for p in status["plugins"] if p["pid"])}
    if status["supervisor"]["forkserver_pid"]:
        pids.add(status["supervisor"]["forkserver_pid"])
    _SEEN_PIDS.update(pids)
    return pids


def landlock_support() -> tuple[int, str]:
    """This kernel's Landlock ABI version; or 0 and why there is none (as workers say it)."""
    try:
        return landlock.abi_version(), ""
    except landlock.Unsupported as exc:
        return 0, str(exc)


def data_folder(data_dir: Path, plugin_id: str) -> Path:
    """The one folder the plugin's worker may write to (under Landlock), in ``data_dir``."""
    return data_dir / "plugins" / plugin_id


def plugin_entry(container: PluginContainer, plugin_id: str) -> dict[str, Any]:
    """``plugin_id``'s entry in the container's status."""
    (found,) = [p for p in container.status()["plugins"] if p["id"] == plugin_id]
    return dict(found)


def runtime_dir_of(container: PluginContainer) -> Path:
    """The runtime directory of the container's supervisor (where its sockets and token are)."""
    endpoint: str = container.status()["supervisor"]["endpoint"]
    return Path(endpoint.removeprefix("ipc://")).parent


def supervisor_log(container: PluginContainer) -> str:
    """What the container's private supervisor logged so far (its log file)."""
    log_file: str = container.status()["supervisor"]["log_file"]
    return Path(log_file).read_text()


def edit_unseen(path: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (the same length) in ``path`` in place, its mtime put
    back: an edit that inode, size and mtime do not show, only the bytes."""
    assert len(old) == len(new)
    before = os.stat(path)
    with open(path, "r+b") as file:  # in place: the same inode
        edited = file.read().replace(old, new)
        assert new in edited
        file.seek(0)
        file.write(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == \
        (before.st_ino, before.st_size, before.st_mtime_ns)


def copy_plugin(source: Path, dest_root: Path, plugin_id: str, **manifest_fields: Any) -> Path:
    """A copy of the plugin folder ``source`` whose manifest says ``plugin_id`` (and more)."""
    folder = dest_root / plugin_id
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = folder / "plugin.json"
    data = json.loads(manifest.read_text())
    data.update(manifest_fields, id=plugin_id)
    manifest.write_text(json.dumps(data))
    return folder


def load_active(container: PluginContainer, folder: Path, plugin_id: str,
                config: dict[str, Any] | None = None) -> None:
    """Discover ``folder``, load ``plugin_id`` from it and activate it."""
    container.discover_plugins([folder])
    container.load_plugin(container.discovered_plugins[plugin_id], config=config or {})
    container.activate_plugin(plugin_id)


# What the test plugins' manifests ask beyond their default scopes, granted as an operator
# would (plugins.ID.grant); a test's own ``plugins`` settings for an id replace these.
TEST_GRANTS: dict[str, dict[str, Any]] = {
    "design": {"grant": ["request:audit:*"]},
    "rogue": {"grant": ["request:audit:whoami"]},
    "relay": {"grant": ["request:*"]},
}


@contextlib.contextmanager
def running_container(**runtime_config: Any) -> Iterator[PluginContainer]:
    """A PluginContainer with a private supervisor; shut down (and checked) on exit."""
    plugins = {**TEST_GRANTS, **runtime_config.pop("plugins", {})}
    container = PluginContainer({"log_level": "WARNING", "plugins": plugins, **runtime_config})
    pids = {container.status()["supervisor"]["pid"]}
    _SEEN_PIDS.update(pids)
    try:
        yield container
    finally:
        with contextlib.suppress(Exception):  # the supervisor may be dead (tests kill it)
            pids |= track(container)
        container.shutdown()
        try:
            all_gone(pids, what="supervisor and workers after shutdown()")
        finally:
            kill_survivors(pids)


@pytest.fixture
def container() -> Iterator[PluginContainer]:
    """A fresh container for one test."""
    with running_container() as fresh:
        yield fresh


@pytest.fixture(scope="module")
def good_container() -> Iterator[PluginContainer]:
    """A container (one per module) running the ``design`` and ``audit`` test plugins."""
    with running_container() as shared:
        shared.discover_plugins([GOOD])
        for plugin_id in ("design", "audit"):
            shared.load_plugin(shared.discovered_plugins[plugin_id], config={"enabled": True})
            shared.activate_plugin(plugin_id)
        track(shared)
        yield shared


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """After the whole run, no supervisor or worker a test saw is still running."""
    yield
    try:
        all_gone(_SEEN_PIDS, what="supervisors and workers at the end of the session")
    finally:
        kill_survivors(_SEEN_PIDS)
        shutil.rmtree(DATA_HOME, ignore_errors=True)
        shutil.rmtree(STATE_HOME, ignore_errors=True)


@pytest.fixture
def stranger() -> Iterator[Any]:
    """Factory of raw DEALER sockets, all closed at the end of the test."""
    context = zmq.Context()
    sockets: list[zmq.Socket[bytes]] = []

    def connect(endpoint: str) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.connect(endpoint)
        sockets.append(sock)
        return sock

    yield connect
    for sock in sockets:
        sock.close()
    context.term()
