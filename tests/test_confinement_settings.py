"""What a worker is asked to apply, and why not (pure); the plugins' data folders (real ones)."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from spec_kit_runtime.plugins.config import config_from_data
from spec_kit_runtime.plugins.data_dir import default_data_dir, plugin_data_dir
from spec_kit_runtime.policy.confinement import Confinement, plan

NOBODY = pwd.getpwnam("nobody")
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")


def test_per_plugin_hardening_overrides_the_runtime_default() -> None:
    config = config_from_data({
        "runtime": {"hardening": {"landlock": False, "worker_user": "nobody"}},
        "plugins": {"audit": {"hardening": {"landlock": True}}},
    }, Path("/etc/x/runtime.yaml"))
    assert config.hardening_for("audit") == Confinement(True, True, "nobody")
    assert config.hardening_for("design") == Confinement(False, True, "nobody")
    assert config.data_dir is None  # plugin_data.default_data_dir()


@pytest.mark.parametrize(("settings", "network", "uid", "asked", "reasons"), [
    (Confinement(), False, 0, (True, False, True, None),
     {"own_uid": "no worker_user configured (hardening.worker_user)"}),
    (Confinement(landlock=False, network_namespace=False), False, 1000,
     (False, False, False, None),
     {"landlock": "off in the config (hardening.landlock)",
      "own_network": "off in the config (hardening.network_namespace)",
      "own_uid": "no worker_user configured (hardening.worker_user)"}),
    (Confinement(worker_user="nobody"), True, 0, (True, True, False, NOBODY.pw_uid),
     {"own_network": "the manifest asks for network"}),
    (Confinement(worker_user="nobody"), False, 1000, (True, False, True, None),
     {"own_uid": "worker_user applies only when the supervisor runs as root"}),
    (Confinement(worker_user=0), False, 0, (True, False, True, None),
     {"own_uid": "worker_user is the supervisor's own user"}),
])
def test_plan(settings: Confinement, network: bool, uid: int,
              asked: tuple[bool, bool, bool, int | None], reasons: dict[str, str]) -> None:
    worker = plan(settings, network, uid)
    assert (worker.landlock, worker.network, worker.own_network, worker.uid) == asked
    assert worker.gid == (None if asked[3] is None else NOBODY.pw_gid)
    assert worker.reasons == reasons


def test_the_default_data_dir_is_xdgs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "spec-kit-runtime"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "spec-kit-runtime"


def test_data_folders_are_made_with_their_modes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        folder = plugin_data_dir(tmp_path / "data", "design", None)
    finally:
        os.umask(old)
    assert folder == tmp_path / "data" / "plugins" / "design"
    modes = [stat.S_IMODE(path.stat().st_mode) for path in (folder.parent.parent, folder.parent,
                                                            folder)]
    assert modes == [0o711, 0o711, 0o700]
    (folder / "kept").write_text("state")
    assert plugin_data_dir(tmp_path / "data", "design", None) == folder  # again: kept as is
    assert (folder / "kept").read_text() == "state"


def test_a_data_folder_others_could_tamper_with_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    plugin_data_dir(data, "design", None)
    (data / "plugins").chmod(0o777)
    with pytest.raises(PermissionError, match="may be written by others"):
        plugin_data_dir(data, "design", None)
    (data / "plugins").chmod(0o711)
    (tmp_path / "elsewhere").mkdir()
    (data / "plugins" / "audit").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PermissionError, match="is not a directory"):
        plugin_data_dir(data, "audit", None)


@needs_root
def test_a_data_folder_follows_its_worker_user(tmp_path: Path) -> None:
    owner = (NOBODY.pw_uid, NOBODY.pw_gid)
    folder = plugin_data_dir(tmp_path / "data", "design", owner)
    assert (folder.stat().st_uid, folder.stat().st_gid) == owner
    plugin_data_dir(tmp_path / "data", "design", None)  # no worker user any more: back to root
    assert (folder.stat().st_uid, folder.stat().st_gid) == (0, 0)


@needs_root
def test_a_data_folder_of_someone_else_is_refused(tmp_path: Path) -> None:
    folder = plugin_data_dir(tmp_path / "data", "design", None)
    os.chown(folder.parent, NOBODY.pw_uid, NOBODY.pw_gid)  # root takes back only its own
    with pytest.raises(PermissionError, match=f"owned by uid {NOBODY.pw_uid}, not 0"):
        plugin_data_dir(tmp_path / "data", "design", None)
