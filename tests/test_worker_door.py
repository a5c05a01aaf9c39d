"""The worker door's Hello checks, as pure logic: a Hello read before the fork server's
answer for its worker (both can come in one poll) is kept until that answer, then checked
like any other; anything without the plugin's secret is refused at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spec_kit_runtime.errors import AuthenticationError
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.manifest_fields import parse_manifest_data
from spec_kit_runtime.policy.confinement import plan
from spec_kit_runtime.policy.restart import RestartTracker
from spec_kit_runtime.policy.scopes import Scope
from spec_kit_runtime.supervisor.clock import LoopClock
from spec_kit_runtime.supervisor.ports import Sent
from spec_kit_runtime.supervisor.router import Router
from spec_kit_runtime.supervisor.slots import PluginSlot, SlotTable
from spec_kit_runtime.supervisor.worker_door import WorkerDoor
from spec_kit_runtime.supervisor.worker_process import WorkerProcess
from spec_kit_runtime.wire.protocol import Hello

SECRET = b"s" * 32


def door_and_slot(tmp_path: Path) -> tuple[WorkerDoor, PluginSlot, list[str]]:
    (tmp_path / "p.py").write_text("")
    info = parse_manifest_data({"id": "p", "name": "P", "version": "1.0.0", "file": "p.py",
                                "entry_point": "P"}, tmp_path / "plugin.json", tmp_path)
    config = RuntimeConfig()
    slot = PluginSlot(info, {}, Scope("p", ()), RestartTracker(config.restart_policy_for("p")),
                      config.limits_for("p"))
    slot.secret = SECRET
    greeted: list[str] = []
    slots = SlotTable(p=slot)
    door = WorkerDoor(lambda *_: Sent.OK, slots, Router(slots, LoopClock(), None, config),  # type: ignore[arg-type]
                      lambda *_: None, lambda _slot: None, lambda _slot: greeted.append("hello"))
    return door, slot, greeted


def worker(pid: int) -> WorkerProcess:
    return WorkerProcess(pid, lambda *_: None, plan(RuntimeConfig().hardening_for("p"), False,
                                                    os.getuid()))


def test_a_hello_before_its_spawn_answer_is_taken_when_the_answer_comes(tmp_path: Path
                                                                         ) -> None:
    door, slot, greeted = door_and_slot(tmp_path)
    door.received(b"conn", Hello("p", os.getpid(), SECRET, b""))
    assert greeted == [] and slot.identity is None  # not yet: whose pid is it?
    slot.worker = worker(os.getpid())
    door.spawned(slot)
    assert greeted == ["hello"] and slot.identity == b"conn" and slot.secret is None
    door.spawned(slot)  # once only
    assert greeted == ["hello"]


def test_an_early_hello_for_another_pid_is_refused_when_the_answer_comes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    door, slot, greeted = door_and_slot(tmp_path)
    door.received(b"conn", Hello("p", 1, SECRET, b""))
    slot.worker = worker(os.getpid())
    door.spawned(slot)
    assert greeted == [] and slot.identity is None and slot.secret == SECRET
    assert "refused" in caplog.text


def test_an_early_hello_without_the_secret_is_refused_at_once(tmp_path: Path) -> None:
    door, slot, greeted = door_and_slot(tmp_path)
    with pytest.raises(AuthenticationError):
        door.received(b"conn", Hello("p", os.getpid(), b"x" * 32, b""))
    slot.worker = worker(os.getpid())
    door.spawned(slot)
    assert greeted == [] and slot.identity is None


def test_a_kept_hello_is_dropped_with_its_spawn(tmp_path: Path) -> None:
    door, slot, greeted = door_and_slot(tmp_path)
    door.received(b"conn", Hello("p", os.getpid(), SECRET, b""))
    door.drop_early("p")  # its spawn failed, or was given up on
    slot.worker = worker(os.getpid())
    door.spawned(slot)
    assert greeted == [] and slot.identity is None
