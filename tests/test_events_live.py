"""Lifecycle events as the supervisor publishes them, followed by `spec-kit-runtime events`."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Command, Event

from conftest import PLUGINS, load_active, running_container, runtime_dir_of
from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.errors import ScopeError
from test_cli import SCRIPT

pytestmark = pytest.mark.timeout(60)
CRASH = PLUGINS / "crash"


class Follower:
    """`spec-kit-runtime events --json` in a subprocess, its lines read on a thread."""

    def __init__(self, runtime_dir: Path) -> None:
        self.process = subprocess.Popen(
            [SCRIPT, "events", "--json", "--runtime-dir", str(runtime_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def until(self, event: str, plugin: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next line for ``event`` about ``plugin`` (earlier ones are skipped)."""
        end = time.monotonic() + timeout
        while (remaining := end - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line["event"] == f"system:{event}" and line["data"].get("plugin") == plugin:
                return line
        raise AssertionError(f"no {event} for {plugin} within {timeout:g}s")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)



def test_events_follows_the_lifecycle_live() -> None:
    with running_container(limits={"cpu_seconds": 1}) as container:
        follower = Follower(runtime_dir_of(container))
        try:
            # Load until the follower sees it: then its subscription is in place.
            load_active(container, CRASH / "crashy", "crashy")
            deadline = time.monotonic() + 15
            while True:
                try:
                    follower.until("plugin_active", "crashy", timeout=0.5)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, "the follower never subscribed"
                    container.restart_plugin("crashy")
            with pytest.raises(Exception, match="killed by SIGSEGV"):
                container.send_message("crashy", Command(command_name="crashy:segv"))
            crashed = follower.until("plugin_crashed", "crashy")
            assert crashed["data"]["reason"] == "killed by SIGSEGV"
            assert crashed["source"] == "system"
            assert follower.until("plugin_restarting", "crashy")["data"]["delay"] == 0
            started = follower.until("plugin_started", "crashy")
            assert started["data"]["pid"] == container.status()["plugins"][0]["pid"]
            follower.until("plugin_active", "crashy")
            assert follower.until("plugin_restarted", "crashy")["data"]["restarts"] == 1

            load_active(container, CRASH / "hog", "hog")
            with pytest.raises(Exception, match="cpu_seconds limit exceeded"):
                container.send_message("hog", Command(command_name="hog:burn"))
            limit = follower.until("plugin_limit_exceeded", "hog")
            assert limit["data"]["reason"] == "cpu_seconds limit exceeded (killed by SIGXCPU)"

            container.stop_plugin("crashy")
            stopped = follower.until("plugin_stopped", "crashy")
            assert (stopped["data"]["how"], stopped["data"]["exit"]) == (
                "stop", "exited with code 0")
        finally:
            follower.close()


def test_clients_may_watch_events_only() -> None:
    with running_container() as container:
        client = SupervisorClient.find(runtime_dir_of(container))
        try:
            with pytest.raises(ScopeError, match="events only"):
                client.control("subscribe", plugin="", pattern="command:*", sub_id=1,
                               priority=50)
        finally:
            client.close()


def test_the_container_follows_events_from_python() -> None:
    with running_container() as container:
        events = container.follow_events()  # subscribed from here on
        load_active(container, CRASH / "crashy", "crashy")
        with pytest.raises(Exception, match="exited with code 3"):
            container.send_message("crashy", Command(command_name="crashy:exit"))
        names = []
        for event in events:
            names.append(event.event_name)
            if event.event_name == "system:plugin_restarted":
                break
        events.close()
        assert names == ["system:plugin_started", "system:plugin_active",
                         "system:plugin_crashed", "system:plugin_restarting",
                         "system:plugin_started", "system:plugin_active",
                         "system:plugin_restarted"]


def test_a_slow_follower_loses_events_not_its_subscription() -> None:
    """Past its queue (ZeroMQ's high-water mark) events are dropped for it; it stays."""
    with running_container() as container:
        client = SupervisorClient.find(runtime_dir_of(container))
        sender = SupervisorClient.find(runtime_dir_of(container))
        try:
            events = client.follow("event:bench:*")
            reached = sum(sender.send(Event(event_name="bench:tick", event_data={"n": n}))
                          for n in range(3000))  # the follower reads none of these yet
            assert 0 < reached < 3000  # the rest were dropped for it
            seen = [next(events).event_name for _ in range(reached)]
            assert seen == ["bench:tick"] * reached
            assert sender.send(Event(event_name="bench:last", event_data={})) == 1
            assert next(events).event_name == "bench:last"  # still subscribed
        finally:
            client.close()
            sender.close()
