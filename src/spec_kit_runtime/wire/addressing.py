"""Where a contracts message goes, and how it is delivered (pure, no I/O).

The 1.0 bus derived a key from the message: ``command:{command_name}``,
``event:{event_name}``, ``request:{method}``. 2.0 keeps that and adds one rule so that
validators, generators and hooks are reachable: a Request whose method already starts
with ``generator:``, ``validator:`` or ``hook:`` addresses that pattern directly
(``Request(method="validator:python")`` reaches ``validator:python``).
"""

from __future__ import annotations

from enum import Enum

from spec_kit_contracts import Command, Event, Message, Request

from spec_kit_runtime.errors import RoutingError
from spec_kit_runtime.policy.patterns import address_problem

DIRECT_PREFIXES = ("generator:", "validator:", "hook:")


class Delivery(Enum):
    """How many handlers a message reaches and what the sender gets back."""

    ONE = "one"  # the highest-priority handler; its result is the reply
    ALL_IN_ORDER = "all_in_order"  # hooks: every handler by priority; the list of results
    FAN_OUT = "fan_out"  # events: every subscriber; the sender learns how many were reached


def address_of(message: Message) -> str:
    """The address a message is sent to; raises RoutingError if it has none or a bad one."""
    if isinstance(message, Command):
        address = f"command:{message.command_name}"
    elif isinstance(message, Event):
        address = f"event:{message.event_name}"
    elif isinstance(message, Request):
        method = message.method
        address = method if method.startswith(DIRECT_PREFIXES) else f"request:{method}"
    elif isinstance(message, Message) and message.target:
        address = f"{message.type.value}:{message.target}"
    else:
        raise RoutingError(
            f"cannot route a {type(message).__name__}: it has no command_name, event_name, "
            "method or target"
        )
    problem = address_problem(address)
    if problem is None and address.endswith(":"):
        problem = "the name after the kind is empty"
    if problem:
        raise RoutingError(f"invalid message address: {problem}", address=address[:300])
    return address


def delivery_of(address: str) -> Delivery:
    """Delivery mode for an address."""
    if address.startswith("event:"):
        return Delivery.FAN_OUT
    if address.startswith("hook:"):
        return Delivery.ALL_IN_ORDER
    return Delivery.ONE
