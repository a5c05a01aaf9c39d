"""The wire codec: records to frames and back, values and contracts messages to msgpack.

Pure functions, imported by the supervisor, the worker host and the client alike. A frame is
one ZeroMQ frame (an extra frame per message costs more than decoding a whole body)::

    u16 header length (big endian) | header: msgpack [version, kind, *fields] | body

The header carries everything needed to route; the body is opaque msgpack that the
supervisor forwards untouched. Values are plain msgpack plus three extension types so
that contracts messages round-trip exactly: datetime, tuple and contracts Message.
Anything else is refused with an ``EncodeError`` naming the type, never pickled.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import struct
import threading
import typing
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from types import NoneType, UnionType
from typing import Any

import msgpack
from spec_kit_contracts.message_types import (
    Command,
    ErrorMessage,
    Event,
    Message,
    MessagePriority,
    MessageType,
    Query,
    Request,
    Response,
)

from spec_kit_runtime.errors import EncodeError, ProtocolError, RuntimeFailure

from .protocol import PROTOCOL_VERSION, RECORD_TYPES, Record

_HEADER_LENGTH = struct.Struct(">H")
HEADER_MARGIN = 4096
_EXT_DATETIME, _EXT_TUPLE, _EXT_MESSAGE = 1, 2, 3
MESSAGE_CLASSES: dict[str, type[Message]] = {
    cls.__name__: cls for cls in (Message, Request, Response, Event, Command, Query, ErrorMessage)
}
_ABSENT = object()
_BASE_FIELDS = ("id", "type", "timestamp", "source", "target", "priority", "payload", "metadata")


# -- records -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class _Kind:
    """How one record kind is framed, worked out once: records are the per-message path."""

    cls: type[Record]
    names: tuple[str, ...]  # header fields, in order (the body, if any, follows the header)
    types: tuple[type, ...]
    has_body: bool
    body_at: int  # the body's place among the constructor's arguments (fields after it default)
    header: Callable[[Record], tuple[Any, ...]]  # [version, kind, *fields] of a record

    @classmethod
    def of(cls, record_type: type[Record]) -> _Kind:
        hints = typing.get_type_hints(record_type)
        names = tuple(f.name for f in dataclasses.fields(record_type) if f.name != "body")
        prefix = (PROTOCOL_VERSION, record_type.KIND)
        fields = operator.attrgetter(*names) if names else None
        header: Callable[[Record], tuple[Any, ...]]
        if fields is None:
            header = lambda record: prefix  # noqa: E731
        elif len(names) == 1:  # attrgetter of one name gives the value, not a tuple
            header = lambda record: (*prefix, fields(record))  # noqa: E731
        else:
            header = lambda record: prefix + fields(record)  # noqa: E731
        every = [f.name for f in dataclasses.fields(record_type)]
        body_at = every.index("body") if "body" in every else len(every)
        return cls(record_type, names, tuple(hints[name] for name in names),
                   "body" in record_type.__dataclass_fields__, body_at, header)


_KINDS = {cls.KIND: _Kind.of(cls) for cls in RECORD_TYPES}


def encode(record: Record) -> bytes:
    """One frame for a record."""
    spec = _KINDS[record.KIND]
    header: bytes = msgpack.packb(spec.header(record))
    if spec.has_body:
        return _HEADER_LENGTH.pack(len(header)) + header + record.body  # type: ignore[union-attr]
    return _HEADER_LENGTH.pack(len(header)) + header


def encode_within(record: Record, limit: int) -> bytes:
    """``encode``, refusing a frame over ``limit`` bytes before it reaches a socket.

    A frame over a receiver's ZeroMQ MAXMSGSIZE makes it drop the whole connection, so
    senders check first and turn the problem into an error reply instead.
    """
    frame = encode(record)
    if len(frame) > limit:
        raise EncodeError(
            f"a {type(record).__name__} of {len(frame)} bytes exceeds the limit of {limit} "
            "bytes (runtime.max_message_bytes)"
        )
    return frame


def receive_limit(max_message_bytes: int) -> int:
    """MAXMSGSIZE for receiving sockets: room for re-written routing headers."""
    return max_message_bytes + HEADER_MARGIN


def decode(frame: bytes) -> Record:
    """The record in a frame; raises ProtocolError on anything malformed."""
    if len(frame) < _HEADER_LENGTH.size:
        raise ProtocolError("frame too short")
    end = _HEADER_LENGTH.size + ((frame[0] << 8) | frame[1])
    if end > len(frame):
        raise ProtocolError("header length runs past the frame")
    try:
        header = msgpack.unpackb(frame[_HEADER_LENGTH.size:end], raw=False)
    except Exception as exc:
        raise ProtocolError(f"malformed header: {type(exc).__name__}") from None
    if type(header) is not list or len(header) < 2:
        raise ProtocolError("header is not [version, kind, ...]")
    if header[0] != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {header[0]!r} (this side speaks {PROTOCOL_VERSION})")
    kind = header[1]
    spec = _KINDS.get(kind) if type(kind) is int else None
    if spec is None:
        raise ProtocolError(f"unknown record kind {kind!r}")
    values = header[2:]
    if len(values) != len(spec.types):
        raise ProtocolError(
            f"{spec.cls.__name__} takes {len(spec.types)} fields, got {len(values)}")
    if tuple(map(type, values)) != spec.types:  # one C-level comparison when all is well
        for name, expected, value in zip(spec.names, spec.types, values, strict=True):
            if type(value) is not expected and not (expected is float and type(value) is int):
                raise ProtocolError(f"{spec.cls.__name__}.{name} must be {expected.__name__}")
    if spec.has_body:
        at = spec.body_at
        if at == len(values):  # the body last, as in every record but Send: no slicing
            return spec.cls(*values, frame[end:])  # type: ignore[call-arg]
        return spec.cls(*values[:at], frame[end:], *values[at:])  # type: ignore[call-arg]
    if end != len(frame):
        raise ProtocolError(f"{spec.cls.__name__} carries no body")
    return spec.cls(*values)


# -- values --------------------------------------------------------------------------------

def pack_value(value: Any) -> bytes:
    """msgpack bytes for a value; EncodeError names what cannot be carried."""
    try:
        packed: bytes = msgpack.packb(value, default=_default, strict_types=True)
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"value cannot be encoded: {exc}") from None
    return packed


def pack_error(error: RuntimeFailure) -> bytes:
    """The body of an error reply."""
    return pack_value(error.to_data())


def msgpack_array(items: list[bytes]) -> bytes:
    """A msgpack array of already-encoded items (no decoding, no re-encoding)."""
    count = len(items)
    if count < 16:
        head = bytes([0x90 | count])
    elif count < 1 << 16:
        head = b"\xdc" + count.to_bytes(2, "big")
    else:
        head = b"\xdd" + count.to_bytes(4, "big")
    return head + b"".join(items)


def unpack_value(data: bytes) -> Any:
    """The value in msgpack bytes; ProtocolError when malformed."""
    if not data:
        return None
    try:
        return msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"malformed body: {type(exc).__name__}: {exc}"[:300]) from None


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return msgpack.ExtType(_EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, tuple):
        return msgpack.ExtType(_EXT_TUPLE, pack_value(list(obj)))
    if isinstance(obj, Message):
        return msgpack.ExtType(_EXT_MESSAGE, pack_value(message_to_data(obj)))
    if not isinstance(obj, Enum):  # a subclass of a plain type travels as that type
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, bytes):
            return bytes(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, int):
            return int(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    raise EncodeError(
        f"a value of type {type(obj).__module__}.{type(obj).__qualname__} cannot be sent: "
        "use None, bool, int, float, str, bytes, list, tuple, dict, datetime or a contracts "
        "Message",
        type=type(obj).__qualname__,
    )


MAX_EXT_NESTING = 32
_nesting = threading.local()


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DATETIME:
        return datetime.fromisoformat(data.decode())
    if code in (_EXT_TUPLE, _EXT_MESSAGE):
        # Each level is a fresh unpackb on the C stack (about 40 KB): hundreds of nested
        # tuples, a kilobyte on the wire, would overflow it long before Python's recursion
        # limit notices. So the nesting of extension values is bounded here.
        depth = getattr(_nesting, "depth", 0)
        if depth >= MAX_EXT_NESTING:
            raise ProtocolError(f"tuples or messages nested more than {MAX_EXT_NESTING} deep")
        _nesting.depth = depth + 1
        try:
            inner = unpack_value(data)
        finally:
            _nesting.depth = depth
        return tuple(inner) if code == _EXT_TUPLE else message_from_data(inner)
    raise ProtocolError(f"unknown extension type {code}")


# -- contracts messages --------------------------------------------------------------------

def _extra_fields(cls: type[Message]) -> tuple[tuple[str, Callable[[Any], bool]], ...]:
    """A subclass's own fields, each with the test its values must pass."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, _checker(hints[f.name])) for f in dataclasses.fields(cls)
        if f.init and f.name not in _BASE_FIELDS
    )


def message_class_name(message: Message) -> str:
    """The contracts class a message travels as; EncodeError for foreign subclasses."""
    name = type(message).__name__
    if MESSAGE_CLASSES.get(name) is not type(message):
        raise EncodeError(
            f"message class {type(message).__qualname__} is not a contracts message class "
            f"({', '.join(MESSAGE_CLASSES)})"
        )
    return name


def message_to_data(message: Message) -> dict[str, Any]:
    """Plain data for a contracts message: class, base fields and subclass fields."""
    name = message_class_name(message)
    data: dict[str, Any] = {
        "class": name, "id": message.id, "type": message.type.value,
        "timestamp": message.timestamp, "source": message.source, "target": message.target,
        "priority": message.priority.value, "payload": message.payload,
        "metadata": message.metadata,
    }
    payload = message.payload
    for field, _ in _EXTRA[name]:
        value = getattr(message, field)
        # The contracts copy each subclass field into payload; send a shared object once.
        if not (isinstance(payload, dict) and payload.get(field, _ABSENT) is value):
            data[field] = value
    return data


def message_from_data(data: Any) -> Message:
    """Rebuild a contracts message exactly; ProtocolError on missing or mistyped fields.

    The message is filled in without running its ``__init__``: the contracts' only work
    there is merging the subclass fields into ``payload``, which is then replaced by the
    payload exactly as sent anyway (and building it that way costs a third of a worker's
    time per call). test_wire checks that the result equals the constructed message.
    """
    if not isinstance(data, dict):
        raise ProtocolError("message data must be a map")
    name = data.get("class")
    cls = MESSAGE_CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message class {name!r}")
    kind_value, priority_value = data.get("type"), data.get("priority")
    kind = _MESSAGE_TYPES.get(kind_value) if type(kind_value) is str else None
    priority = _PRIORITIES.get(priority_value) if type(priority_value) is int else None
    if kind is None or priority is None:
        raise ProtocolError(f"{name}: unknown type {data.get('type')!r} or priority "
                            f"{data.get('priority')!r}")
    fields = {field: _typed(data, field, check) for field, check in _BASE_CHECKS}
    payload = fields["payload"]
    for field, check in _EXTRA[cls.__name__]:
        fields[field] = _typed(data if field in data else payload, field, check)
    fields["priority"] = priority
    if kind is not _FIXED_TYPE[cls.__name__]:  # as __init__ would: a fixed type stays on the class
        fields["type"] = kind
    message: Message = object.__new__(cls)
    message.__dict__.update(fields)
    return message


def _typed(data: dict[str, Any], field: str, check: Callable[[Any], bool]) -> Any:
    if field not in data:
        raise ProtocolError(f"message field '{field}' is missing")
    value = data[field]
    if not check(value):
        raise ProtocolError(f"message field '{field}' has type {type(value).__name__}")
    return value


@functools.cache
def _checker(hint: Any) -> Callable[[Any], bool]:
    """A test of whether a value conforms to ``hint``, worked out once per hint: decoding
    checks every field of every message, and reading a hint each time cost most of it."""
    if hint is Any:
        return lambda value: True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, UnionType):
        options = tuple(_checker(arg) for arg in typing.get_args(hint))
        return lambda value: any(check(value) for check in options)
    if hint is NoneType or hint is None:
        return lambda value: value is None
    target = origin or hint
    if target is float:
        return lambda value: type(value) in (int, float)
    if target is list:
        return lambda value: isinstance(value, (list, tuple))
    if target is int:
        return lambda value: type(value) is int
    return lambda value: isinstance(value, target)


_BASE_CHECKS = tuple((name, _checker(hint)) for name, hint in (
    ("id", str), ("timestamp", datetime), ("source", str), ("target", str | None),
    ("payload", dict), ("metadata", dict)))
_EXTRA = {name: _extra_fields(cls) for name, cls in MESSAGE_CLASSES.items()}
_MESSAGE_TYPES = {kind.value: kind for kind in MessageType}
_FIXED_TYPE = {name: None if cls.__dataclass_fields__["type"].init else cls.type
               for name, cls in MESSAGE_CLASSES.items()}
_PRIORITIES = {priority.value: priority for priority in MessagePriority}


def pack_message(message: Message) -> bytes:
    """msgpack bytes for a contracts message."""
    return pack_value(message_to_data(message))


def unpack_message(data: bytes) -> Message:
    """The contracts message in msgpack bytes."""
    return message_from_data(unpack_value(data))
