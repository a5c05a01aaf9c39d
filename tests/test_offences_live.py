"""Repeat offenders on the supervisor's sockets: no longer heard, and memory stays flat.

A stranger that keeps sending garbage is banned after OFFENCE_LIMIT refused records: not
even the right token gets it served afterwards, while a fresh connection is. A plugin whose
own worker connection sends garbage past the limit has its worker killed and restarted by
its policy. Thousands of garbage frames over hundreds of connections leave the
supervisor's memory where it was and the plugins answering.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import zmq
from spec_kit_contracts import Command

from conftest import GOOD, PLUGINS, plugin_entry, plugin_pids, running_container, track, wait_until
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import RuntimeFailure
from spec_kit_runtime.policy.offences import LIMIT
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import ClientHello, Control, Reply

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def live() -> Iterator[PluginContainer]:
    with running_container() as container:
        container.discover_plugins([GOOD, PLUGINS / "rogue"])
        for plugin_id in ("design", "rogue"):
            container.load_plugin(container.discovered_plugins[plugin_id], config={})
            container.activate_plugin(plugin_id)
        track(container)
        yield container


def answer(sock: zmq.Socket[bytes], timeout_ms: int = 2000) -> Reply | None:
    if not sock.poll(timeout_ms):
        return None
    record = codec.decode(sock.recv())
    assert isinstance(record, Reply)
    return record


def design_answers(container: PluginContainer) -> None:
    result = container.send_message(
        "design", Command(command_name="design:generate", arguments=["ok"]))
    assert result["doc"] == "# ok"


def test_a_stranger_past_the_limit_is_no_longer_heard(live: PluginContainer,
                                                      stranger: Any) -> None:
    endpoint = live.status()["supervisor"]["endpoint"]
    token = live._first.token  # the token file's content, as every client reads it
    below = stranger(endpoint)
    for _ in range(LIMIT - 2):
        below.send(b"\x00")
    below.send(codec.encode(ClientHello(token)))
    reply = answer(below)
    assert reply is not None and reply.ok  # under the limit: still heard
    offender = stranger(endpoint)
    for _ in range(LIMIT):
        offender.send(b"\x00")
    offender.send(codec.encode(ClientHello(token)))
    assert answer(offender, 500) is None  # banned: even the right token gets silence
    fresh = stranger(endpoint)
    fresh.send(codec.encode(ClientHello(token)))
    reply = answer(fresh)
    assert reply is not None and reply.ok
    design_answers(live)


def test_a_plugin_sending_garbage_on_its_own_connection_is_restarted(
        live: PluginContainer) -> None:
    before = plugin_pids(live)
    few = live.send_message("rogue", Command(command_name="rogue:garble",
                                             arguments=[str(LIMIT // 2)]))
    assert few == "sent"  # a few offences: dropped and logged, nothing more
    assert plugin_pids(live)["rogue"] == before["rogue"]
    with pytest.raises(RuntimeFailure):  # its reply comes after the ban: never heard
        live.send_message("rogue", Command(command_name="rogue:garble",
                                           arguments=[str(LIMIT)]))
    entry = wait_until(lambda: (e := plugin_entry(live, "rogue"))["state"] == "active"
                       and e["pid"] != before["rogue"] and e, timeout=10.0,
                       what="rogue restarted")
    assert "protocol violation" in entry["last_exit"]
    assert plugin_pids(live)["design"] == before["design"]
    design_answers(live)


def settled(process: psutil.Process) -> None:
    """Wait until ``process`` has read what is queued for it: its CPU time stops growing."""
    def idle() -> bool:
        used = sum(process.cpu_times()[:2])
        time.sleep(0.1)
        return sum(process.cpu_times()[:2]) == used
    wait_until(idle, timeout=30.0, what="the supervisor to drain the flood")


def test_memory_stays_flat_under_a_garbage_flood(live: PluginContainer) -> None:
    supervisor = psutil.Process(live.status()["supervisor"]["pid"])
    endpoint = live.status()["supervisor"]["endpoint"]
    status = Control(1, "status", codec.pack_value({}))

    def flood(connections: int) -> None:
        """Each stranger sends its garbage and goes (ZeroMQ's own buffers go with it)."""
        context = zmq.Context()
        try:
            for n in range(connections):
                sock = context.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 5000)  # close() returns; what is queued is sent
                sock.connect(endpoint)
                for i in range(40):
                    sock.send(codec.encode(status) if i % 2 else bytes([n % 256, i]) * 7)
                sock.close()
        finally:
            context.term()  # after every queued frame went out
        settled(supervisor)
        design_answers(live)

    for _ in range(6):  # warm up: the allocator, ZeroMQ and the offence tables settle
        flood(400)
    before = supervisor.memory_info().rss
    for _ in range(6):  # 2400 more strangers, 96,000 more frames
        flood(400)
    grown = supervisor.memory_info().rss - before
    # A sanity bound: it catches gross growth (frames queued and never read, state kept per
    # message), not a few hundred bytes per stranger, which is what test_offences bounds.
    # Runs alone settle within 2 MiB; the rest is the allocator's noise.
    assert grown < 8 << 20, f"the supervisor grew by {grown >> 10} KiB"
    design_answers(live)
