"""The control socket: status and health answered ahead of message traffic, and only
control operations taken there."""

from __future__ import annotations

import threading

import pytest
import zmq
from spec_kit_contracts import Command

from conftest import GOOD, load_active, running_container, runtime_dir_of
from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.errors import ProtocolError
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.protocol import ClientHello, Send

pytestmark = pytest.mark.timeout(60)
CONNECTIONS, EACH = 20, 1000  # the flood: 20 connections with 1000 pipelined sends each



def test_status_overtakes_a_flood_of_messages() -> None:
    with running_container() as container:
        load_active(container, GOOD, "design")
        runtime_dir = runtime_dir_of(container)
        token = (runtime_dir / "token").read_bytes()
        context = zmq.Context()
        flooders = []
        for _ in range(CONNECTIONS):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"ipc://{runtime_dir / 'clients.sock'}")
            sock.send(codec.encode(ClientHello(token)))
            assert sock.poll(5000)
            sock.recv()
            flooders.append(sock)
        body = codec.pack_message(Command(command_name="design:generate", arguments=["f"]))
        answered = [0]
        done = threading.Event()

        def collect() -> None:
            poller = zmq.Poller()
            for sock in flooders:
                poller.register(sock, zmq.POLLIN)
            while answered[0] < CONNECTIONS * EACH and poller.poll(20_000):
                for sock, _ in poller.poll(0):
                    while sock.poll(0):
                        sock.recv()
                        answered[0] += 1
            done.set()

        try:
            for sock in flooders:
                for cid in range(1, EACH + 1):
                    sock.send(codec.encode(Send(cid, "command:design:generate", "design", 0.0,
                                               body)))
            collector = threading.Thread(target=collect)
            collector.start()
            control = SupervisorClient.find(runtime_dir, control=True)
            try:
                status = control.control("status", timeout=10.0)
                behind = answered[0]
            finally:
                control.close()
            assert status["plugins"][0]["id"] == "design"
            assert behind < CONNECTIONS * EACH // 2, behind  # answered well ahead of the flood
            assert done.wait(30) and answered[0] == CONNECTIONS * EACH  # and nothing was lost
            collector.join()
        finally:
            for sock in flooders:
                sock.close(0)
            context.term()


def test_the_control_socket_takes_no_messages() -> None:
    with running_container() as container:
        load_active(container, GOOD, "design")
        control = SupervisorClient.find(runtime_dir_of(container), control=True)
        try:
            with pytest.raises(ProtocolError, match="control operations only"):
                control.send(Command(command_name="design:generate", arguments=["x"]),
                             "design")
            with pytest.raises(ProtocolError, match="control operations only"):
                control.control("subscribe", plugin="design", pattern="event:design:*",
                                sub_id=1, priority=50)
            assert control.control("health")["status"] == "healthy"
        finally:
            control.close()
