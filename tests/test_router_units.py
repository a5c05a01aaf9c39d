"""The router on fake ports (supervisor_fakes): where a send goes, what its sender gets back
(a reply, a count, joined hook results or an error naming why), deadlines, a worker's death,
the outbox's outcomes, and the hung-handler rule, by the clock the test moves. No process,
no socket."""

from __future__ import annotations

import math
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spec_kit_contracts import Event

from spec_kit_runtime.errors import (
    DeadlineExceeded,
    HandlerError,
    NoHandlerError,
    PluginNotActiveError,
    PluginStateError,
    RoutingError,
    RuntimeFailure,
    ScopeError,
    WorkerDiedError,
)
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.policy.restart import RestartPolicy
from spec_kit_runtime.supervisor import router as router_module
from spec_kit_runtime.supervisor.ports import Sent
from spec_kit_runtime.supervisor.replies import caller_key
from spec_kit_runtime.wire.codec import pack_error, pack_value, unpack_message
from spec_kit_runtime.wire.protocol import MAX_TIMEOUT, Call, Readiness, Reply, Send
from supervisor_fakes import Answer, Core, failed_with, manifest

HOST = b"host-connection"  # a client serving handlers (the host application)
FOLLOWER = b"follower-connection"  # a client following events


def send(core: Core, address: str, sender: str | None = None, *, timeout: float = 0.0,
         as_plugin: str = "", body: bytes = b"",
         ready: Readiness = Readiness.DEFAULT) -> Answer:
    """Route a Send from plugin ``sender`` (None: a client) and keep what it is answered."""
    answer = Answer()
    core.router.route(sender, Send(77, address, as_plugin, timeout, body, int(ready)), answer)
    return answer


def calls_to(core: Core, plugin_id: str) -> list[Call]:
    """The Calls sent to ``plugin_id``'s worker since the last look."""
    records = core.outbox.take(plugin_id)
    assert all(isinstance(r, Call) for r in records), records
    return [r for r in records if isinstance(r, Call)]


def calls_to_client(core: Core, identity: bytes) -> list[Call]:
    """The Calls sent to client connection ``identity`` since the last look."""
    mine = [r for who, r in core.outbox.to_clients if who == identity]
    core.outbox.to_clients = [(w, r) for w, r in core.outbox.to_clients if w != identity]
    assert all(isinstance(r, Call) for r in mine), mine
    return [r for r in mine if isinstance(r, Call)]


def reply(core: Core, owner: str, call: Call, value: Any = None, ok: bool = True) -> None:
    core.router.replied(owner, Reply(call.cid, ok, pack_value(value)))


@pytest.fixture
def core(tmp_path: Path) -> Core:
    """Plugins a and b active; a handles command:a:* (sub 11) and validator:* (sub 12)."""
    core = Core()
    core.active(manifest(tmp_path, "a"))
    core.active(manifest(tmp_path, "b"))
    core.router.table.add("a", 11, "command:a:*", 50, "message")
    core.router.table.add("a", 12, "validator:*", 50, "message")
    assert core.outbox.to_workers == [] and core.outbox.to_clients == []
    return core


# -- one handler: the send reaches it, its reply reaches the sender -------------------------

@pytest.mark.parametrize(("address", "sender", "as_plugin", "sub_id", "source"), [
    ("command:a:go", None, "", 11, "client"),  # a client
    ("command:a:go", None, "a", 11, "a"),  # a client with a's scope
    ("validator:py", None, "b", 12, "b"),  # a client with b's scope
    ("validator:py", "b", "", 12, "b"),  # plugin b's worker
    ("validator:py", "b", "a", 12, "b"),  # a worker always sends as its own plugin
])
def test_a_send_reaches_the_active_handler_and_its_reply_the_sender(
        core: Core, address: str, sender: str | None, as_plugin: str, sub_id: int,
        source: str) -> None:
    body = pack_value({"options": [1, 2]})
    answer = send(core, address, sender, as_plugin=as_plugin, body=body)
    [call] = calls_to(core, "a")
    assert (call.sub_id, call.address, call.source, call.body) == (sub_id, address, source, body)
    assert call.cid > 0 and calls_to(core, "b") == []
    assert answer.calls == 0 and core.slots["a"].calls.figures().in_flight == 1

    reply(core, "a", call, {"done": True})
    assert answer.ok is True and answer.value == {"done": True} and answer.calls == 1
    figures = core.slots["a"].calls.figures()
    assert (figures.handled, figures.errors, figures.in_flight) == (1, 0, 0)
    assert len(core.router.deadlines) == 0


def test_the_highest_priority_active_handler_takes_the_send(core: Core, tmp_path: Path
                                                            ) -> None:
    core.router.table.add("b", 31, "validator:py", 10, "message")
    core.router.table.add("a", 32, "validator:py", 10, "message")  # a tie: the earlier wins
    core.load(manifest(tmp_path, "c"))
    core.up("c")  # initialized: its handler, first by priority, is passed over
    core.router.table.add("c", 33, "validator:py", 5, "message")

    answer = send(core, "validator:py")
    assert calls_to(core, "a") == [] and calls_to(core, "c") == []
    [call] = calls_to(core, "b")
    assert call.sub_id == 31
    reply(core, "b", call, "b's")
    assert answer.value == "b's"


def test_a_reply_from_another_owner_is_dropped(core: Core) -> None:
    answer = send(core, "command:a:go")
    [call] = calls_to(core, "a")
    reply(core, "b", call, "not b's to give")
    core.router.replied(caller_key(HOST), Reply(call.cid, True, pack_value("nor a client's")))
    assert answer.calls == 0
    reply(core, "a", call, "a's")
    assert answer.value == "a's" and answer.calls == 1


def test_a_handlers_error_reply_reaches_the_sender_as_that_error(core: Core) -> None:
    answer = send(core, "command:a:go")
    [call] = calls_to(core, "a")
    core.router.replied("a", Reply(call.cid, False, pack_error(HandlerError(
        "boom", plugin="a", traceback="Traceback: ..."))))
    error = failed_with(answer, HandlerError, "boom")
    assert error.plugin == "a"
    assert core.slots["a"].calls.figures().errors == 1


# -- refused before anything is sent --------------------------------------------------------

@pytest.mark.parametrize(("address", "sender", "as_plugin", "timeout", "kind", "parts"), [
    ("command:zz:go", None, "", 0.0, NoHandlerError, ["no plugin handles 'command:zz:go'"]),
    ("", None, "", 0.0, RoutingError, ["invalid address", "must not be empty"]),
    ("command:a:go now", None, "", 0.0, RoutingError, ["invalid address", "may contain only"]),
    ("command:a:*", None, "", 0.0, RoutingError, ["invalid address", "may contain only"]),
    ("command:a:" + "x" * 300, None, "", 0.0, RoutingError, ["longer than 256"]),
    ("command:a:go", None, "", -1.0, RoutingError, ["timeout must be 0", "not -1.0"]),
    ("command:a:go", None, "", math.nan, RoutingError, ["timeout must be 0", "nan"]),
    ("command:a:go", None, "", math.inf, RoutingError, ["timeout must be 0", "inf"]),
    ("command:a:go", None, "", MAX_TIMEOUT + 1, RoutingError, ["timeout must be 0"]),
    ("event:system:plugin_active", None, "", 0.0, ScopeError,
     ["only the supervisor emits event:system:*"]),
    ("event:system:x", None, "b", 0.0, ScopeError, ["may not emit 'event:system:x'"]),
    ("event:a:done", None, "b", 0.0, ScopeError, ["'b' may not emit 'event:a:done'"]),
    ("command:a:go", None, "b", 0.0, ScopeError, ["'b' may not send 'command:a:go'",
                                                  "outside its scope"]),
    ("command:a:go", None, "ghost", 0.0, PluginStateError, ["'ghost' is not loaded"]),
    ("command:zz:go", "b", "", 0.0, NoHandlerError, ["no plugin handles 'command:zz:go'"]),
])
def test_a_send_refused_reaches_no_handler(
        core: Core, address: str, sender: str | None, as_plugin: str, timeout: float,
        kind: type[RuntimeFailure], parts: list[str]) -> None:
    answer = send(core, address, sender, as_plugin=as_plugin, timeout=timeout)
    failed_with(answer, kind, *parts)
    assert core.outbox.to_workers == [] and len(core.router.deadlines) == 0


def _loading(core: Core, tmp_path: Path) -> None:
    core.load(manifest(tmp_path, "p"))


def _initialized(core: Core, tmp_path: Path) -> None:
    core.load(manifest(tmp_path, "p"))
    core.up("p")


def _deactivated(core: Core, tmp_path: Path) -> None:
    core.active(manifest(tmp_path, "p"))
    core.lifecycle.deactivate("p", Answer())
    core.answer("p", "initialized")


def _restarting(core: Core, tmp_path: Path) -> None:
    core.active(manifest(tmp_path, "p"))
    core.exit("p")


def _stopped(core: Core, tmp_path: Path) -> None:
    core.active(manifest(tmp_path, "p"))
    stopped = Answer()
    core.lifecycle.stop("p", stopped)
    core.answer("p", "initialized")  # deactivate
    core.answer("p", "shut down")  # shutdown; then the worker is told to Stop
    core.exit("p", 0)
    assert stopped.ok


@pytest.mark.parametrize(("make", "state"), [
    (_loading, "'p' is loading"),
    (_initialized, "'p' is initialized"),
    (_deactivated, "'p' is initialized"),
    (_restarting, "'p' is restarting (killed by SIGKILL)"),
    (_stopped, "'p' is stopped (exited with code 0)"),
])
def test_a_command_to_a_plugin_not_active_names_its_state(
        core: Core, tmp_path: Path, make: Callable[[Core, Path], None], state: str) -> None:
    make(core, tmp_path)
    core.outbox.to_workers.clear()
    answer = send(core, "command:p:run", ready=Readiness.FAIL_FAST)  # not to wait for it
    error = failed_with(answer, PluginNotActiveError, "no active handler for 'command:p:run'",
                        state)
    assert error.context == {"address": "command:p:run", "plugins": ["p"]}
    assert core.outbox.to_workers == []


def test_a_shared_address_names_every_handler_owner_not_active(core: Core) -> None:
    """Not by namespace (validator: belongs to nobody): by the routes of the owners."""
    core.router.table.add("b", 21, "validator:py", 50, "message")
    core.exit("a")
    core.exit("b", 3)
    answer = send(core, "validator:py", ready=Readiness.FAIL_FAST)
    error = failed_with(answer, PluginNotActiveError, "'a' is restarting (killed by SIGKILL)",
                        "'b' is restarting (exited with code 3)")
    assert error.context["plugins"] == ["a", "b"]


# -- events: every active subscriber, the sender gets the count -----------------------------

def test_an_event_reaches_every_active_subscriber_and_answers_the_count(
        core: Core, tmp_path: Path) -> None:
    core.load(manifest(tmp_path, "c"))
    core.up("c")  # initialized, not active: its subscription is not reached
    core.router.table.add("c", 23, "event:b:*", 50, "message")
    core.router.table.add("a", 21, "event:b:*", 50, "message")
    core.router.table.add("b", 22, "event:b:done", 50, "message")  # b hears its own
    core.router.serve_caller(FOLLOWER, 24, "event:*", 50, serving=False)
    core.router.table.add("a", 25, "event:a:*", 50, "message")  # does not match
    body = pack_value({"event_name": "b:done"})

    answer = send(core, "event:b:done", "b", body=body)
    assert answer.ok is True and answer.value == 3
    assert [(c.cid, c.sub_id, c.address, c.source, c.body) for c in calls_to(core, "a")] == [
        (0, 21, "event:b:done", "b", body)]
    assert [c.sub_id for c in calls_to(core, "b")] == [22]
    assert [c.sub_id for c in calls_to_client(core, FOLLOWER)] == [24]
    assert calls_to(core, "c") == []
    assert core.slots["a"].calls.figures().handled == 1  # an event delivered counts
    assert core.slots["c"].calls.figures().handled == 0
    assert len(core.router.deadlines) == 0  # one way: nothing waits for an answer


def test_an_event_without_subscribers_reaches_none(core: Core) -> None:
    answer = send(core, "event:b:unheard", "b")
    assert answer.ok is True and answer.value == 0 and core.outbox.to_workers == []


def test_system_events_reach_their_subscribers_from_the_supervisor(core: Core,
                                                                   tmp_path: Path) -> None:
    core.router.table.add("b", 31, "event:system:*", 50, "message")
    core.router.serve_caller(FOLLOWER, 32, "event:system:plugin_active", 50, serving=False)
    core.router.table.add("a", 33, "event:a:*", 50, "message")

    core.router.emit_system("custom", {"n": 1})
    [call] = calls_to(core, "b")
    assert (call.cid, call.sub_id, call.address, call.source) == (
        0, 31, "event:system:custom", "system")
    event = unpack_message(call.body)
    assert isinstance(event, Event)
    assert (event.event_name, event.event_data, event.source) == ("system:custom", {"n": 1},
                                                                  "system")
    assert calls_to_client(core, FOLLOWER) == [] and calls_to(core, "a") == []

    before = len(core.events)
    core.active(manifest(tmp_path, "c"))  # the lifecycle emits through it
    emitted = core.event_names()[before:]
    assert "plugin_active" in emitted
    [followed] = calls_to_client(core, FOLLOWER)
    assert followed.address == "event:system:plugin_active" and followed.sub_id == 32
    assert unpack_message(followed.body).event_data["plugin"] == "c"
    assert [c.address for c in calls_to(core, "b")] == [f"event:system:{n}" for n in emitted]


# -- hooks: every handler in priority order, one at a time ----------------------------------

@pytest.fixture
def hooked(core: Core) -> Core:
    """hook:build handled by the host (priority -1), then b (10), then a (30)."""
    core.router.table.add("a", 41, "hook:build", 30, "message")
    core.router.table.add("b", 42, "hook:*", 10, "message")
    core.router.serve_caller(HOST, 43, "hook:build", -1, serving=True)
    return core


HOOK_ORDER = [(caller_key(HOST), 43), ("b", 42), ("a", 41)]


def next_hook_call(core: Core) -> tuple[str, Call]:
    """The one handler called now, and its Call."""
    sent = [(caller_key(HOST), c) for c in calls_to_client(core, HOST)]
    sent += [(p, c) for p in ("a", "b") for c in calls_to(core, p)]
    assert len(sent) == 1, sent
    return sent[0]


def test_hook_handlers_run_in_priority_order_and_their_results_join(hooked: Core) -> None:
    body = pack_value({"target": "x"})
    answer = send(hooked, "hook:build", body=body)
    for owner, sub_id in HOOK_ORDER:
        assert answer.calls == 0
        called, call = next_hook_call(hooked)
        assert (called, call.sub_id, call.address, call.source, call.body) == (
            owner, sub_id, "hook:build", "client", body)
        reply(hooked, owner, call, f"by {owner}")
    assert answer.ok is True
    assert answer.value == [f"by {owner}" for owner, _ in HOOK_ORDER]


@pytest.mark.parametrize("failing", range(len(HOOK_ORDER)))
def test_a_failing_hook_handler_fails_the_chain(hooked: Core, failing: int) -> None:
    answer = send(hooked, "hook:build")
    for index, (owner, _) in enumerate(HOOK_ORDER[:failing + 1]):
        called, call = next_hook_call(hooked)
        assert called == owner
        if index < failing:
            reply(hooked, owner, call, "fine")
        else:
            hooked.router.replied(owner, Reply(call.cid, False, pack_error(
                HandlerError(f"{owner} refused", plugin=owner))))
    failed_with(answer, HandlerError, f"{HOOK_ORDER[failing][0]} refused")
    assert hooked.outbox.to_workers == [] and hooked.outbox.to_clients == []  # no one after


def test_a_hook_chain_shares_one_deadline(hooked: Core) -> None:
    answer = send(hooked, "hook:build", timeout=5.0)
    _, first = next_hook_call(hooked)
    hooked.wait(3.0)
    reply(hooked, caller_key(HOST), first, "in time")
    called, _ = next_hook_call(hooked)
    assert called == "b"
    hooked.wait(1.999)
    assert answer.calls == 0
    hooked.wait(0.001)  # 5 s after the send: b had what was left, 2 s
    error = failed_with(answer, DeadlineExceeded, "plugin 'b'", "within 2s")
    assert error.context == {"plugin": "b", "what": "'hook:build'", "timeout": 2.0}
    assert hooked.outbox.to_workers == []  # a is never called


def test_a_hook_skips_handlers_not_active_and_without_any_answers_empty(
        core: Core, tmp_path: Path) -> None:
    core.load(manifest(tmp_path, "c"))
    core.up("c")
    core.router.table.add("c", 51, "hook:lint", 1, "message")  # initialized: skipped
    core.router.table.add("a", 52, "hook:lint", 50, "message")
    answer = send(core, "hook:lint")
    [call] = calls_to(core, "a")
    reply(core, "a", call, "a linted")
    assert answer.value == ["a linted"] and calls_to(core, "c") == []

    nobody = send(core, "hook:nobody")
    assert nobody.ok is True and nobody.value == []


# -- deadlines ------------------------------------------------------------------------------

@pytest.mark.parametrize(("timeout", "seconds"), [(2.0, 2.0), (0.0, 30.0)])  # 0: request_timeout
def test_a_call_past_its_deadline_fails_and_a_later_reply_is_dropped(
        core: Core, timeout: float, seconds: float) -> None:
    answer = send(core, "command:a:go", timeout=timeout)
    [call] = calls_to(core, "a")
    core.wait(seconds - 0.001)
    assert answer.calls == 0
    core.wait(0.001)
    error = failed_with(answer, DeadlineExceeded,
                        f"plugin 'a' did not answer 'command:a:go' within {seconds:g}s")
    assert error.context == {"plugin": "a", "what": "'command:a:go'", "timeout": seconds}
    figures = core.slots["a"].calls.figures()
    assert (figures.handled, figures.errors, figures.in_flight) == (1, 1, 0)

    reply(core, "a", call, "too late")
    assert answer.calls == 1 and answer.ok is False
    assert core.slots["a"].calls.figures().handled == 1


@pytest.mark.parametrize(("after", "in_time"), [
    (1.999, True),
    (2.0, False),  # read in the very turn its deadline comes, before expire: late
    (2.5, False),  # the loop has not expired it yet: still late
])
def test_a_reply_at_or_after_its_deadline_is_late(core: Core, after: float, in_time: bool
                                                  ) -> None:
    answer = send(core, "command:a:go", timeout=2.0)
    [call] = calls_to(core, "a")
    core.clock.advance(after)  # no expire: the reply is read first in this turn
    reply(core, "a", call, "answer")
    if in_time:
        assert answer.ok is True and answer.value == "answer"
    else:
        failed_with(answer, DeadlineExceeded, "within 2s")
    core.router.expire(core.clock.now())
    assert answer.calls == 1


def test_a_workers_death_fails_its_calls_in_flight_at_once(core: Core) -> None:
    core.router.table.add("b", 21, "command:b:*", 50, "message")
    first, second = send(core, "command:a:one"), send(core, "command:a:two")
    other = send(core, "command:b:go")
    assert len(calls_to(core, "a")) == 2
    core.exit("a")
    for answer in (first, second):
        error = failed_with(answer, WorkerDiedError, "plugin 'a' worker killed by SIGKILL")
        assert error.context == {"plugin": "a", "reason": "killed by SIGKILL"}
    assert other.calls == 0  # b's call is not a's
    assert core.slots["a"].calls.figures().errors == 2
    core.wait(60.0)  # their deadlines went with them
    assert (first.calls, second.calls) == (1, 1)


def test_calls_waiting_in_a_worker_are_bounded(core: Core,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "MAX_WAITING", 2)
    sent = [send(core, "command:a:go", timeout=1.0) for _ in range(2)]
    refused = send(core, "command:a:go")
    error = failed_with(refused, PluginNotActiveError,
                        "'a' has 2 calls waiting already: 'command:a:go' refused")
    assert error.plugin == "a"
    first, _ = calls_to(core, "a")

    core.wait(1.0)  # timed out, but the worker has not left them: still waiting
    assert all(isinstance(answer.error, DeadlineExceeded) for answer in sent)
    failed_with(send(core, "command:a:go"), PluginNotActiveError, "2 calls waiting")
    assert calls_to(core, "a") == []

    reply(core, "a", first, "late")  # late, but the worker has left that call
    taken = send(core, "command:a:go")
    assert taken.calls == 0 and len(calls_to(core, "a")) == 1


def test_calls_to_a_callers_handler_are_not_bounded(core: Core,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "MAX_WAITING", 2)
    core.router.serve_caller(HOST, 61, "request:app:*", 50, serving=True)
    answers = [send(core, "request:app:do") for _ in range(3)]
    assert [a.calls for a in answers] == [0, 0, 0]
    assert len(calls_to_client(core, HOST)) == 3


# -- what the outbox says became of a send --------------------------------------------------

def test_a_caller_gone_is_dropped_with_its_routes_and_calls(core: Core) -> None:
    key = caller_key(HOST)
    core.router.serve_caller(HOST, 61, "request:app:*", 50, serving=True)
    in_flight = send(core, "request:app:do")
    assert len(calls_to_client(core, HOST)) == 1

    core.outbox.outcome = Sent.GONE
    refused = send(core, "request:app:do")
    for answer in (refused, in_flight):
        error = failed_with(answer, PluginNotActiveError, f"handler owner {key} disconnected")
        assert error.context == {}
    assert key not in core.router.callers and core.router.table.patterns_of(key) == []

    core.outbox.outcome = Sent.OK
    failed_with(send(core, "request:app:do"), NoHandlerError, "no plugin handles")


def test_a_caller_whose_queue_is_full_loses_that_send_only(core: Core) -> None:
    key = caller_key(HOST)
    core.router.serve_caller(HOST, 61, "request:app:*", 50, serving=True)
    in_flight = send(core, "request:app:do")
    [call] = calls_to_client(core, HOST)

    core.outbox.outcome = Sent.FULL
    lost = send(core, "request:app:do")
    failed_with(lost, PluginNotActiveError, f"'{key}' cannot be reached for 'request:app:do'")
    assert in_flight.calls == 0
    assert core.router.callers[key] == HOST and core.router.table.patterns_of(key) == [
        "request:app:*"]

    core.outbox.outcome = Sent.OK
    reply(core, key, call, "served")
    assert in_flight.value == "served"


@pytest.mark.parametrize(("outcome", "kept"), [(Sent.GONE, False), (Sent.FULL, True),
                                               (Sent.TOO_BIG, True), (Sent.OK, True)])
def test_an_event_counts_the_followers_it_reached(core: Core, outcome: Sent, kept: bool
                                                  ) -> None:
    key = caller_key(FOLLOWER)
    core.router.serve_caller(FOLLOWER, 62, "event:b:*", 50, serving=False)
    core.outbox.outcome = outcome
    answer = send(core, "event:b:done", "b")
    assert answer.value == (1 if outcome is Sent.OK else 0)
    assert (key in core.router.callers, key in core.router.followers) == (kept, kept)
    assert core.router.table.patterns_of(key) == (["event:b:*"] if kept else [])


def test_a_worker_whose_queue_is_full_loses_that_call(core: Core) -> None:
    core.outbox.outcome = Sent.FULL
    answer = send(core, "command:a:go")
    failed_with(answer, PluginNotActiveError, "'a' cannot be reached for 'command:a:go'")
    assert core.slots["a"].active and core.slots["a"].calls.figures().errors == 1
    assert core.router.hung.calls.waiting("a") == 0  # not in the worker: not waited for


# -- a worker still in a call a grace after its deadline is killed --------------------------

def test_a_worker_still_in_a_call_a_grace_after_its_deadline_is_killed(core: Core) -> None:
    pid = core.slots["a"].worker.pid  # type: ignore[union-attr]
    timed_out = send(core, "command:a:slow", timeout=2.0)
    queued = send(core, "command:a:next", timeout=60.0)
    core.wait(2.0)
    failed_with(timed_out, DeadlineExceeded, "within 2s")
    core.wait(4.999)  # call_grace is 5 s
    assert core.workers.signals == []
    core.wait(0.001)
    assert core.workers.signals == [(pid, signal.SIGKILL)]
    cause = "call to command:a:slow timed out after 2s"
    assert core.slots["a"].worker.kill_cause == cause  # type: ignore[union-attr]

    core.outbox.outcome = Sent.FULL  # being killed: a call that cannot go says why
    failed_with(send(core, "command:a:go"), PluginNotActiveError,
                f"its worker is being killed ({cause})")
    core.outbox.outcome = Sent.OK

    core.exit("a")
    died = f"{cause} (killed by SIGKILL)"
    failed_with(queued, WorkerDiedError, died)
    assert core.slots["a"].last_exit == died
    assert ("plugin_crashed", {"plugin": "a", "reason": died}) in core.events
    core.wait(60.0)
    assert core.workers.signals == [(pid, signal.SIGKILL)]  # once


def test_a_late_reply_within_the_grace_spares_the_worker(core: Core) -> None:
    answer = send(core, "command:a:slow", timeout=2.0)
    [call] = calls_to(core, "a")
    core.wait(6.9)
    reply(core, "a", call, "late")
    core.wait(60.0)
    assert core.workers.signals == [] and answer.calls == 1
    assert isinstance(answer.error, DeadlineExceeded)


@pytest.mark.parametrize(("sender", "as_plugin", "timeout", "killed_after"), [
    (None, "", 1.0, 6.0),  # the host: its own deadline, then the grace
    (None, "b", 1.0, 6.0),  # the host with a plugin's scope: still its own deadline
    ("b", "", 1.0, 35.0),  # a plugin: no sooner than request_timeout (30 s)
    ("b", "", 40.0, 45.0),  # a plugin with a longer timeout of its own: that one
])
def test_a_call_from_a_plugin_is_judged_no_sooner_than_request_timeout(
        core: Core, sender: str | None, as_plugin: str, timeout: float,
        killed_after: float) -> None:
    answer = send(core, "validator:py", sender, as_plugin=as_plugin, timeout=timeout)
    core.wait(timeout)
    failed_with(answer, DeadlineExceeded, f"within {timeout:g}s")  # at its own deadline
    core.wait(killed_after - timeout - 0.01)
    assert core.workers.signals == []
    core.wait(0.02)
    assert [sig for _, sig in core.workers.signals] == [signal.SIGKILL]
    assert core.slots["a"].worker.kill_cause == (  # type: ignore[union-attr]
        f"call to validator:py timed out after {timeout:g}s")


def test_a_call_queued_behind_a_longer_one_is_judged_once_the_worker_reaches_it(
        core: Core) -> None:
    long = send(core, "command:a:long", timeout=10.0)
    short = send(core, "command:a:short", timeout=1.0)
    first, _ = calls_to(core, "a")
    core.wait(1.0)
    failed_with(short, DeadlineExceeded, "within 1s")
    core.wait(8.0)  # 9 s: 8 s past the short one's deadline, but the worker is not in it
    assert core.workers.signals == []
    reply(core, "a", first, "long done")
    assert long.value == "long done"
    core.wait(4.99)  # its grace starts now that the worker is in it
    assert core.workers.signals == []
    core.wait(0.02)
    assert len(core.workers.signals) == 1
    assert core.slots["a"].worker.kill_cause == (  # type: ignore[union-attr]
        "call to command:a:short timed out after 1s")


def test_a_callers_handler_is_timed_out_never_killed(core: Core) -> None:
    core.router.serve_caller(HOST, 61, "request:app:*", 50, serving=True)
    answer = send(core, "request:app:do", timeout=1.0)
    core.wait(100.0)
    failed_with(answer, DeadlineExceeded, f"'{caller_key(HOST)}'", "within 1s")
    assert core.workers.signals == []
    assert core.router.hung.calls.waiting(caller_key(HOST)) == 0  # not judged at all


def test_a_plugin_whose_restarts_gave_up_is_named_failed(tmp_path: Path) -> None:
    core = Core(RuntimeConfig(restart=RestartPolicy(max_restarts=0)))
    core.active(manifest(tmp_path, "a"))
    core.exit("a", 1)
    assert core.slots["a"].status == "failed"
    failed_with(send(core, "command:a:go"), PluginNotActiveError,
                "'a' is failed (exited with code 1)")
