"""The vocabulary's enums, by table: each member is the text used on the wire, in JSON and
in metrics labels, and the enums that name the same things agree."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import msgpack
import pytest
from spec_kit_contracts import PluginStatus

from spec_kit_runtime.errors import ConfigError
from spec_kit_runtime.plugins.config import config_from_data
from spec_kit_runtime.policy.exits import ExitKind
from spec_kit_runtime.policy.restart import Ending, Strategy
from spec_kit_runtime.policy.states import PluginState
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import Control, ControlOp, Phase, PhaseName
from supervisor_fakes import Core

ENUMS: list[type[StrEnum]] = [PluginState, ExitKind, Strategy, PhaseName, ControlOp]


@pytest.mark.parametrize("member", [m for enum in ENUMS for m in enum], ids=repr)
def test_a_member_is_its_text(member: StrEnum) -> None:
    text = member.value
    assert member == text and hash(member) == hash(text)
    assert str(member) == f"{member}" == text
    assert msgpack.packb(member) == msgpack.packb(text)  # a record header carries it as is
    assert json.dumps({member: member}) == json.dumps({text: text})


def test_plugin_states_are_the_contracts_statuses_then_the_supervisors_own() -> None:
    """In this order: metrics list a label per state in it."""
    statuses = [status.value for status in PluginStatus]
    assert [state.value for state in PluginState] == [*statuses, "restarting", "stopped",
                                                       "failed"]


@pytest.mark.parametrize("kind", list(ExitKind))
def test_each_exit_kind_is_the_ending_of_its_value(kind: ExitKind) -> None:
    assert Ending(kind).value == kind
    assert Ending(kind).abnormal


@pytest.mark.parametrize(("given", "strategy"), [
    (None, Strategy.ONE_FOR_ONE),
    ("one_for_one", Strategy.ONE_FOR_ONE),
    ("rest_for_one", Strategy.REST_FOR_ONE),
])
def test_the_configured_strategy_is_a_strategy(given: str | None, strategy: Strategy) -> None:
    runtime = {} if given is None else {"strategy": given}
    config = config_from_data({"runtime": runtime}, Path("/etc/x/runtime.yaml"))
    assert config.strategy is strategy


def test_an_unknown_strategy_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"'runtime\.strategy' must be one_for_one or "
                                          r"rest_for_one$"):
        config_from_data({"runtime": {"strategy": "all"}}, Path("/etc/x/runtime.yaml"))


@pytest.mark.parametrize(("record", "as_text"), [
    (Phase(1, PhaseName.INITIALIZE, b"\x80"), Phase(1, "initialize", b"\x80")),
    (Control(2, ControlOp.STATUS, b""), Control(2, "status", b"")),
])
def test_records_carry_a_member_as_its_text(record: Phase | Control,
                                            as_text: Phase | Control) -> None:
    assert codec.encode(record) == codec.encode(as_text)
    assert codec.decode(codec.encode(record)) == record


def test_the_supervisor_serves_every_control_op() -> None:
    assert set(Core().control._ops) == set(ControlOp)
