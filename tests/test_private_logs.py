"""The private supervisors' log files: where they are, how many are kept, how big one may
grow, and what a failed start quotes from one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from spec_kit_runtime.client import private_logs
from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.logs.capped_file import CappedFile

pytestmark = pytest.mark.timeout(30)


def test_default_folder_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert private_logs.default_log_dir() == tmp_path / "spec-kit-runtime" / "logs"
    monkeypatch.setenv("XDG_STATE_HOME", "relative")  # ignored, as the spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert private_logs.default_log_dir() == (
        tmp_path / "home" / ".local" / "state" / "spec-kit-runtime" / "logs")


def test_each_new_file_is_new_private_and_in_a_private_folder(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "logs"
    first = private_logs.new_log_file(folder)
    second = private_logs.new_log_file(folder)
    assert first != second and first.parent == second.parent == folder
    assert first.name.startswith("supervisor-") and first.name.endswith(f"-{os.getpid()}.log")
    assert first.stat().st_mode & 0o777 == 0o600 and first.stat().st_size == 0
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_folder_others_may_write_to_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    with pytest.raises(ConfigError, match="log folder"):
        private_logs.new_log_file(tmp_path)


def test_only_the_newest_files_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    made = []
    for age in range(8):
        path = private_logs.new_log_file(folder, keep=100)
        os.utime(path, (1000 - age, 1000 - age))  # made[0] is the newest
        made.append(path)
    Path(f"{made[0]}.1").write_text("rotated part of a kept file")
    Path(f"{made[7]}.1").write_text("rotated part of a pruned file")
    (folder / "notes.txt").write_text("not ours")
    newest = private_logs.new_log_file(folder, keep=3)
    assert sorted(folder.iterdir()) == sorted(
        [newest, made[0], made[1], Path(f"{made[0]}.1"), folder / "notes.txt"])


def test_tail_gives_the_last_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("".join(f"line {n}\n" for n in range(1000)))
    assert private_logs.tail(path, lines=2) == "line 998\nline 999"
    cut = private_logs.tail(path, lines=10_000, max_bytes=30).splitlines()
    assert cut[-1] == "line 999" and all(line.startswith("line ") for line in cut)  # no half
    assert private_logs.tail(tmp_path / "missing") == ""


def test_a_capped_file_rotates_and_takes_the_followers_along(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.log"
    follower = os.open(os.devnull, os.O_WRONLY)  # stands in for stdout and stderr
    handler = CappedFile(path, max_bytes=1000, follow=(follower,))
    logger = logging.Logger("capped")
    logger.addHandler(handler)
    try:
        for n in range(100):
            logger.warning("record %03d %s", n, "x" * 40)
        os.write(follower, b"written by a print\n")
    finally:
        handler.close()
        os.close(follower)
    older = Path(f"{path}.1")
    assert sorted(tmp_path.iterdir()) == [path, older]
    assert older.stat().st_size <= 1000
    assert path.stat().st_size <= 1000 + len("written by a print\n")
    current = path.read_text()
    assert "record 099" in current and current.endswith("written by a print\n")
    assert "record 000" not in current + older.read_text()  # rotated away
