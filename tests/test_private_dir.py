"""A private supervisor's folder: made locked, held, and swept only when nobody holds it,
and only if it is ours: no folder without the lock file, of another mode, or behind a
symbolic link is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from spec_kit_runtime.client import private_dir
from spec_kit_runtime.errors import ConfigError

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def made() -> Iterator[list[int]]:
    """Claims (lock fds) taken by a test, released at its end."""
    claims: list[int] = []
    yield claims
    for fd in claims:
        os.close(fd)


def abandoned(parent: Path) -> Path:
    """A private folder whose caller and supervisor are gone (its claim released)."""
    folder, claim = private_dir.create(parent)
    (folder / "run").mkdir()
    (folder / "run" / "token").write_bytes(b"x")
    os.close(claim)
    return folder


def test_a_new_folder_is_private_locked_and_kept_while_claimed(
        tmp_path: Path, made: list[int]) -> None:
    folder, claim = private_dir.create(tmp_path)
    made.append(claim)
    assert folder.parent == tmp_path and folder.name.startswith(private_dir.PREFIX)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in folder.iterdir()) == [private_dir.LOCK]
    assert private_dir.sweep(tmp_path) == []
    assert folder.is_dir()


def test_an_abandoned_folder_is_swept(tmp_path: Path) -> None:
    folder = abandoned(tmp_path)
    assert private_dir.sweep(tmp_path) == [folder]
    assert not folder.exists()


def test_a_folder_held_by_another_process_is_kept(tmp_path: Path) -> None:
    """The supervisor's own lock (``hold``) keeps the folder once the caller let go."""
    folder = abandoned(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from spec_kit_runtime.client import private_dir; private_dir.hold(Path(sys.argv[1])); "
         "print('held', flush=True); sys.stdin.read()", str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert private_dir.sweep(tmp_path) == []
        assert folder.is_dir()
    finally:
        holder.communicate(timeout=10)
    assert private_dir.sweep(tmp_path) == [folder]  # its holder is gone


def test_hold_refuses_a_folder_that_is_not_a_private_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a private supervisor's folder"):
        private_dir.hold(tmp_path)


def test_folders_that_are_not_ours_to_sweep_are_left_alone(tmp_path: Path) -> None:
    no_lock = tmp_path / f"{private_dir.PREFIX}0"  # e.g. the default runtime directory
    no_lock.mkdir(mode=0o700)
    other_name = abandoned(tmp_path).rename(tmp_path / "elsewhere")
    open_mode = abandoned(tmp_path)
    open_mode.chmod(0o755)
    lock_is_a_link = abandoned(tmp_path)
    (lock_is_a_link / private_dir.LOCK).unlink()
    (lock_is_a_link / private_dir.LOCK).symlink_to(other_name / private_dir.LOCK)
    a_file = tmp_path / f"{private_dir.PREFIX}file"
    a_file.write_text("")
    assert private_dir.sweep(tmp_path) == []
    for kept in (no_lock, other_name, open_mode, lock_is_a_link, a_file):
        assert kept.exists(), kept


def test_a_symbolic_link_to_an_abandoned_folder_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = abandoned(elsewhere)
    link = tmp_path / f"{private_dir.PREFIX}link"
    link.symlink_to(target)
    assert private_dir.sweep(tmp_path) == []
    assert link.is_symlink() and (target / "run" / "token").exists()


def test_sweeping_a_missing_folder_finds_nothing(tmp_path: Path) -> None:
    assert private_dir.sweep(tmp_path / "missing") == []


def test_a_deep_tmpdir_falls_back_to_tmp(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """Socket paths under a deep TMPDIR would not fit a unix socket's 108 bytes."""
    deep = tmp_path / ("d" * 80)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    assert private_dir.default_parent() == Path("/tmp")
    short = Path(tempfile.mkdtemp(prefix="s", dir="/tmp"))
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(short))
        assert private_dir.default_parent() == short
    finally:
        short.rmdir()


@pytest.mark.timeout(20)
def test_a_lock_file_that_is_a_fifo_neither_hangs_nor_is_swept(tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: the sweep (every container's start)
    would have hung on one planted as a lock file."""
    fifo_lock = abandoned(tmp_path)
    (fifo_lock / private_dir.LOCK).unlink()
    os.mkfifo(fifo_lock / private_dir.LOCK)
    assert private_dir.sweep(tmp_path) == []
    assert fifo_lock.exists()
    with pytest.raises(ConfigError):
        private_dir.hold(fifo_lock)


def test_a_sweep_looks_at_a_bounded_number_of_folders(tmp_path: Path) -> None:
    for _ in range(private_dir.MAX_SWEPT + 5):
        abandoned(tmp_path)
    assert len(private_dir.sweep(tmp_path)) == private_dir.MAX_SWEPT
    assert len(private_dir.sweep(tmp_path)) == 5  # the next start takes the rest
