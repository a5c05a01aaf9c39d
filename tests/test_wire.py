"""The codec without sockets: records, values and contracts messages round-trip exactly."""

import contextlib
import struct
from datetime import datetime, timedelta, timezone
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spec_kit_contracts import (
    Command,
    Event,
    Message,
    MessagePriority,
    MessageType,
    Query,
    Request,
    Response,
)
from spec_kit_contracts.message_types import ErrorMessage

from spec_kit_runtime.errors import EncodeError, HandlerError, ProtocolError, from_data
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import PROTOCOL_VERSION as V
from spec_kit_runtime.wire.protocol import (
    RECORD_TYPES,
    Call,
    ClientHello,
    Control,
    Exited,
    Heartbeat,
    Hello,
    Phase,
    Reply,
    Send,
    ServiceCall,
    Signal,
    Spawn,
    Spawned,
    Stop,
    Subscribe,
    Unsubscribe,
)

RECORDS = [
    Hello("design", 42, b"s" * 32), ClientHello(b"t" * 32), Phase(1, "initialize", b"\x80"),
    Subscribe(3, "command:design:*", 50, "command"), Unsubscribe(3),
    Call(7, 3, "command:design:generate", "audit", b"body"),
    Send(8, "validator:python", "", 2.5, b"body"), Reply(9, False, b"\xc0"),
    Control(10, "status", b""), Stop(), Heartbeat(12),
    Spawn(13, "fork", b"\x80"), Spawned(13, 4242, ""), Signal(4242, 15), Exited(4242, -9, 7),
    Exited(4242, 0, Exited.NOT_KNOWN),
    ServiceCall(14, "filesystem", "read_file", b"\x81\xa4path\xa1a"),
]


def test_every_record_kind_is_covered() -> None:
    assert {type(r) for r in RECORDS} == set(RECORD_TYPES)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_records_round_trip(record: Any) -> None:
    assert codec.decode(codec.encode(record)) == record


def _frame(header: list[Any], body: bytes = b"") -> bytes:
    packed = msgpack.packb(header)
    return struct.pack(">H", len(packed)) + packed + body


@pytest.mark.parametrize(("frame", "why"), [
    (b"", "too short"),
    (b"\x00", "too short"),
    (b"\xff\xff\x90", "runs past"),
    (b"\x00\x01\xc1", "malformed header"),
    (_frame([V]), "version, kind"),
    (_frame([V + 1, 1, "x", 1, b"s"]), "protocol version"),
    (_frame([1, 7, 7, "command:a:go", "", 0.0], b"\x01"), "protocol version 1 .this side "
                                                           "speaks 3."),  # before Send.ready
    (_frame([2, 15, 4242, -9]), "protocol version 2 .this side speaks 3."),  # before began
    (_frame([V, 99]), "unknown record kind"),
    (_frame([V, 1, "x", 1]), "takes 3 fields"),
    (_frame([V, 1, "x", True, b"s"]), "pid must be int"),
    (_frame([V, 8, 1, 1]), "ok must be bool"),
    (_frame([V, 10], b"extra"), "carries no body"),
    (_frame({"not": "a list"}), "version, kind"),  # type: ignore[arg-type]
])
def test_malformed_frames_are_refused(frame: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        codec.decode(frame)


@given(st.binary(max_size=200))
def test_decode_never_raises_anything_but_protocol_error(frame: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        codec.decode(frame)


@given(st.binary(max_size=200))
def test_unpack_value_never_raises_anything_but_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        codec.unpack_value(data)


def test_deep_nesting_is_refused_not_crashing() -> None:
    with pytest.raises(ProtocolError):
        codec.unpack_value(b"\x91" * 100_000 + b"\xc0")


@pytest.mark.parametrize("code", [2, 3])  # tuples, messages: each level a fresh unpack
def test_deep_extension_nesting_is_refused_not_crashing(code: int) -> None:
    """Unbounded, 300 levels (1.2 KB) overflowed the C stack: a segfault, not an error."""
    body = msgpack.packb(None)
    for _ in range(5000):
        body = msgpack.packb(msgpack.ExtType(code, body))
    with pytest.raises(ProtocolError, match="nested more than 32 deep"):
        codec.unpack_value(body)


def test_tuples_nested_within_the_bound_round_trip() -> None:
    value: Any = "x"
    for _ in range(codec.MAX_EXT_NESTING):
        value = (value,)
    assert codec.unpack_value(codec.pack_value(value)) == value


MESSAGES = [
    Message(target="audit", priority=MessagePriority.LOW, metadata={"k": [1, 2]}),
    Message(type=MessageType.QUERY, target="x"),
    Request(method="validator:python", params={"a": (1, 2), "b": None}, timeout=2.5,
            requires_response=False),
    Response(request_id="r1", result={"x": [1.5, "y"]}, success=False, error="bad",
             error_code="E1"),
    Event(event_name="design:done", event_data={"at": datetime(2026, 1, 2, 3, 4, 5, 6)},
          cancelable=True),
    Command(command_name="design:generate", arguments=["a", "b"], options={"n": 1},
            source="spoof", priority=MessagePriority.CRITICAL),
    Query(query_type="q", criteria={"a": 1}, fields=["f"], limit=3, offset=1),
    ErrorMessage(error_type="E", error_message="m", stack_trace="tb", recoverable=True),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_round_trip_exactly(message: Message) -> None:
    again = codec.unpack_message(codec.pack_message(message))
    assert type(again) is type(message)
    assert again == message
    assert again.payload == message.payload
    assert again.timestamp == message.timestamp
    assert vars(again) == vars(message)  # built without __init__: not an attribute less


def test_fields_changed_after_construction_round_trip() -> None:
    request = Request(method="m", params={"a": 1})
    request.params = {"b": 2}  # payload still holds the old params: both must survive
    again = codec.unpack_message(codec.pack_message(request))
    assert again == request
    assert again.params == {"b": 2} and again.payload["params"] == {"a": 1}


def test_subclass_fields_shared_with_payload_are_sent_once() -> None:
    big = "x" * 10_000
    assert len(codec.pack_message(Request(method="m", params={"v": big}))) < 11_000


def test_cancelled_event_payload_survives() -> None:
    event = Event(event_name="x:y", cancelable=True)
    event.cancel()
    again = codec.unpack_message(codec.pack_message(event))
    assert again.cancelled is True and again.payload["cancelled"] is True


def test_tz_aware_datetime_and_nested_messages_round_trip() -> None:
    when = datetime(2026, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    value = {"when": when, "reply": Response(request_id="x", result=(1, "a"))}
    assert codec.unpack_value(codec.pack_value(value)) == value


@pytest.mark.parametrize("value", [{1, 2}, object(), MessageType.EVENT, {"k": lambda: 1}])
def test_unencodable_values_name_their_type(value: Any) -> None:
    with pytest.raises(EncodeError, match="cannot be sent"):
        codec.pack_value(value)


def test_foreign_message_subclass_is_refused() -> None:
    class Custom(Command):
        pass

    with pytest.raises(EncodeError, match="Custom"):
        codec.pack_message(Custom(command_name="a:b"))


@pytest.mark.parametrize(("change", "why"), [
    ({"class": "Nope"}, "unknown message class"),
    ({"id": 5}, "'id'"),
    ({"priority": 7}, "7"),
    ({"type": "nope"}, "nope"),
    ({"arguments": "not-a-list"}, "'arguments'"),
    ({"options": []}, "'options'"),
])
def test_mistyped_message_fields_are_refused(change: dict[str, Any], why: str) -> None:
    data = codec.message_to_data(Command(command_name="a:b"))
    data.update(change)
    with pytest.raises(ProtocolError, match=why):
        codec.message_from_data(data)


@pytest.mark.parametrize("count", [0, 1, 15, 16, 70_000])
def test_msgpack_array_joins_encoded_items(count: int) -> None:
    items = [codec.pack_value({"i": i}) for i in range(count)]
    assert codec.unpack_value(codec.msgpack_array(items)) == [{"i": i} for i in range(count)]


def test_errors_cross_the_wire_with_their_cause() -> None:
    error = HandlerError("boom", plugin="design", traceback="Traceback...\nValueError: x\n")
    again = from_data(codec.unpack_value(codec.pack_value(error.to_data())))
    assert type(again) is HandlerError
    assert again.plugin == "design" and again.message == "boom"
    assert "ValueError: x" in str(again.__cause__)
    assert type(from_data("garbage")) is ProtocolError


# -- properties: any input is a record / value / message, or a ProtocolError ---------------

_FIELD_VALUES = {
    int: st.integers(min_value=-(2**63), max_value=2**64 - 1),
    str: st.text(max_size=40),
    bytes: st.binary(max_size=40),
    bool: st.booleans(),
    float: st.floats(allow_nan=False) | st.integers(min_value=-(2**53), max_value=2**53),
}
_ANY_SCALAR = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
               | st.floats() | st.text(max_size=20) | st.binary(max_size=20))
_ANY_VALUE = st.recursive(
    _ANY_SCALAR, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4), max_leaves=20)


@st.composite
def _records(draw: st.DrawFn) -> Any:
    cls = draw(st.sampled_from(RECORD_TYPES))
    spec = codec._KINDS[cls.KIND]
    values = [draw(_FIELD_VALUES[hint]) for hint in spec.types]
    if spec.has_body:  # where the constructor takes it: fields after it have defaults
        values.insert(spec.body_at, draw(st.binary(max_size=100)))
    return cls(*values)


@given(_records())
def test_any_well_typed_record_round_trips(record: Any) -> None:
    assert codec.decode(codec.encode(record)) == record


@given(st.sampled_from(RECORD_TYPES), st.lists(_ANY_VALUE, max_size=6), st.binary(max_size=20))
def test_a_known_kind_with_any_fields_is_a_record_or_refused(
        cls: Any, fields: list[Any], body: bytes) -> None:
    try:
        frame = _frame([V, cls.KIND, *fields], body)
    except (OverflowError, ValueError, TypeError):  # not representable in msgpack at all
        return
    try:
        record = codec.decode(frame)
    except ProtocolError:
        return
    assert type(record) is cls
    assert codec.decode(codec.encode(record)) == record


@given(st.dictionaries(st.sampled_from(["class", "id", "type", "timestamp", "source", "target",
                                        "priority", "payload", "metadata", "command_name",
                                        "arguments", "options", "event_name", "method"]),
                       _ANY_VALUE | st.datetimes()
                       | st.sampled_from(["Command", "Event", "command", "event", 50]),
                       max_size=10))
def test_any_message_data_is_a_message_or_refused(data: dict[str, Any]) -> None:
    try:
        message = codec.message_from_data(data)
    except ProtocolError:
        return
    assert isinstance(message, Message)
    assert codec.unpack_message(codec.pack_message(message)) == message


@given(st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=20)
    | st.datetimes(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20))
def test_values_round_trip(value: Any) -> None:
    assert codec.unpack_value(codec.pack_value(value)) == value


class _Detonator:
    """Unpickling this would create a file: proof that something unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def test_pickled_payloads_are_never_unpickled(tmp_path: Any) -> None:
    import pickle

    marker = tmp_path / "unpickled"
    pickled = pickle.dumps(_Detonator(str(marker)))
    for code in range(0, 128):  # as any extension type: refused unless it is one of ours
        frame = msgpack.packb(msgpack.ExtType(code, pickled))
        with contextlib.suppress(ProtocolError):
            codec.unpack_value(frame)
    with pytest.raises(ProtocolError):
        codec.unpack_value(pickled)  # as a whole body: not msgpack
    assert codec.unpack_value(codec.pack_value({"blob": pickled})) == {"blob": pickled}  # bytes
    with pytest.raises(EncodeError):
        codec.pack_value(_Detonator(str(marker)))  # and nothing is pickled on the way out
    assert not marker.exists()
