"""Calls waiting for ready, at their edges (found in review), on fake ports: restarts that
stop coming back outside an operation, a plugin calling itself (or a peer calling back)
during its start, calls due in the turn their plugin comes back, the hung-handler rule for
a call delivered late, memory kept by cancelled timers, shared addresses during a
recover, and what is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from spec_kit_runtime.errors import DeadlineExceeded, PluginNotActiveError
from spec_kit_runtime.wire import codec
from spec_kit_runtime.wire.codec import pack_value
from spec_kit_runtime.wire.protocol import Call, Phase, Readiness, Reply, Send
from supervisor_fakes import Answer, Core, failed_with, manifest, record_names, usual_answer
from test_ready_waits_units import active_a, back, calls, configured, send


@pytest.fixture
def core(tmp_path: Path) -> Core:
    return active_a(tmp_path)


def in_backoff(core: Core) -> None:
    """Crash once (restart at once), come back, crash again: a 0.5 s backoff is pending."""
    core.exit("a")
    core.clock.advance(0)
    core.started("a")
    core.hello("a")
    core.come_back("a", 11, "command:a:*")
    assert core.slots["a"].active
    core.exit("a")
    assert core.slots["a"].restart_timer is not None
    assert core.slots["a"].status == "restarting"


# -- a restart that stops coming back without an operation ending ---------------------

def test_a_refused_deactivate_during_the_backoff_fails_held_calls_at_once(
        core: Core) -> None:
    in_backoff(core)
    held = send(core, timeout=20.0)
    assert held.calls == 0
    refused = Answer()
    core.lifecycle.deactivate("a", refused)  # no worker: fails, the slot is marked error
    assert refused.ok is False and core.slots["a"].status == "error"
    core.clock.advance(0.5)  # the restart timer fires and does nothing (status != restarting)
    assert core.slots["a"].restart_timer is None and core.slots["a"].busy is None
    # Nothing will bring 'a' back: the held call fails now ("will not become active").
    failed_with(held, PluginNotActiveError, "will not become active")


def test_a_failed_start_during_the_backoff_fails_held_calls_and_takes_the_restart(
        core: Core) -> None:
    in_backoff(core)
    held = send(core, timeout=20.0)
    started = Answer()
    core.lifecycle.start("a", started)  # the backoff's timer is not cancelled by a start
    core.started("a")
    core.hello("a")
    core.answer("a", ok=False)  # its activate raises
    assert started.ok is False and core.slots["a"].restart_timer is None  # the start's now
    failed_with(held, PluginNotActiveError, "will not become active")
    later = send(core, timeout=20.0)  # nothing under way: no wait
    failed_with(later, PluginNotActiveError, "'a' is error")


# -- a plugin's own call to itself during its start is held until the phase times out --

def test_a_plugins_call_to_itself_from_its_own_activate_does_not_wait_for_itself(
        core: Core) -> None:
    core.exit("a")
    core.clock.advance(0)  # recover begins
    core.started("a")
    core.hello("a")
    phases = [r for r in core.outbox.take("a") if isinstance(r, Phase)]
    assert [p.phase for p in phases] == ["load", "initialize", "activate"]
    for phase in phases[:2]:
        core.reply("a", phase, usual_answer("a", phase, "loaded"))
    # Its activate() (which the recover waits for) calls its own command, and blocks on it:
    own = send(core, "command:a:warmup", sender="a")
    # Held, it would wait for the recover, which waits for this very activate.
    failed_with(own, PluginNotActiveError, "'a' is")


# -- a held call delivered after its deadline ------------------------------------------

def test_a_held_call_past_its_deadline_is_not_delivered(core: Core) -> None:
    core.exit("a")  # restart at once (timer due now)
    held = send(core, timeout=0.5)
    core.clock.advance(0)
    core.started("a")
    core.hello("a")
    # The replacement's activate answer is read in the same loop turn as the held call's
    # deadline, before timers run (the loop reads sockets first, then runs due timers).
    core.clock.time += 0.6
    core.come_back("a", 11, "command:a:*")
    assert calls(core) == []  # not sent: its caller has been told already
    failed_with(held, DeadlineExceeded, "did not become active within 0.5s")


def test_a_delivered_held_call_reports_the_callers_timeout(core: Core) -> None:
    core.exit("a")
    answer = send(core, timeout=2.0)
    back(core)
    core.clock.advance(2.0)
    core.router.expire(core.clock.now())
    error = failed_with(answer, DeadlineExceeded)
    assert error.context.get("timeout") == 2.0 and "within 2s" in error.message


# -- memory ----------------------------------------------------------------------------

def test_a_delivered_held_calls_body_is_not_kept_by_its_cancelled_timer(core: Core) -> None:
    core.exit("a")
    big = b"x" * 1_000_000
    answer = Answer()
    core.router.route(None, Send(1, "command:a:go", "", 86_400.0, big, 0), answer)
    back(core)
    [call] = calls(core)
    core.router.replied("a", Reply(call.cid, True, pack_value("ok")))
    assert answer.ok
    kept = [t for t in core.clock.timers._heap if t.cancelled
            and any(getattr(c.cell_contents, "send", None) is not None
                    and c.cell_contents.send.body is big
                    for c in (t.callback.__closure__ or ()))]
    assert kept == [], "the 1 MB body stays referenced for a day by a cancelled timer"


# -- a plugin that will come back only initialized ------------------------------------

def test_calls_to_a_plugin_restarting_to_initialized_fail_at_once(tmp_path: Path) -> None:
    core = configured()
    core.ready(manifest(tmp_path, "p"))  # loaded, initialized, never activated
    core.router.table.add("p", 5, "command:p:*", 50, "message")
    core.exit("p")
    assert core.slots["p"].status == "restarting"
    answer = send(core, "command:p:go")
    failed_with(answer, PluginNotActiveError, "'p' is restarting")  # at once: not to active


# -- shared addresses (generator:/validator:) during the recover ----------------------

def test_a_call_to_a_shared_address_during_the_recover_waits_like_during_the_backoff(
        tmp_path: Path) -> None:
    core = configured()
    core.active(manifest(tmp_path, "g"))
    core.router.table.add("g", 5, "generator:docs", 50, "message")
    core.exit("g")
    during_backoff = send(core, "generator:docs")
    assert during_backoff.calls == 0  # held: its route is still there
    core.clock.advance(0)  # the recover begins and drops g's routes
    during_recover = send(core, "generator:docs")
    assert during_recover.calls == 0, during_recover.error.message
    core.started("g")
    core.hello("g")
    core.come_back("g", 5, "generator:docs")
    sent = [r for r in core.outbox.take("g") if isinstance(r, Call)]
    assert [c.address for c in sent] == ["generator:docs"] * 2  # both, once it is back
    assert core.router.waits.returning_owners("generator:docs") == set()


# -- checks that hold ----------------------------------------------------------------------

def test_send_round_trips_and_every_body_record_keeps_its_body() -> None:
    from spec_kit_runtime.wire.protocol import RECORD_TYPES
    send_ = Send(3, "command:a:b", "p", 1.5, b"\x91\x01", 2)
    assert codec.decode(codec.encode(send_)) == send_
    for cls in RECORD_TYPES:
        spec = codec._KINDS[cls.KIND]
        if spec.has_body:
            import dataclasses
            names = [f.name for f in dataclasses.fields(cls)]
            assert names.index("body") == spec.body_at


def test_unload_during_the_backoff_fails_held_calls_and_a_reload_gets_none(
        core: Core, tmp_path: Path) -> None:
    in_backoff(core)
    held = send(core)
    core.lifecycle.unload("a", Answer())
    failed_with(held, PluginNotActiveError, "will not become active", "unloaded")
    loaded = core.load(manifest(tmp_path, "a"))
    core.up("a")
    assert loaded.ok and calls(core) == [] and core.router.waits.count("a") == 0


def test_a_flood_of_ready_values_and_ids_is_refused_or_bounded(core: Core) -> None:
    for bad in (-1, 3, 2**63):
        answer = Answer()
        core.router.route(None, Send(1, "command:a:go", "", 0.0, b"\xc0", bad), answer)
        assert answer.ok is False
    for n in range(50):  # ids that are not loaded are never held
        answer = send(core, f"command:nobody{n}:go", ready=Readiness.WAIT)
        assert answer.ok is False
    assert core.router.waits._held == {}


def test_a_caller_handler_serves_while_its_plugin_restarts(core: Core) -> None:
    core.router.serve_caller(b"cli", 9, "command:a:*", 10, True)
    core.exit("a")
    answer = send(core)
    assert core.router.waits.count("a") == 0
    assert [r for i, r in core.outbox.to_clients if isinstance(r, Call)]
    assert answer.calls == 0


# -- hung-handler rule for a held call delivered with little time left -----------------

def test_a_held_client_call_delivered_late_does_not_get_a_healthy_replacement_killed(
        tmp_path: Path) -> None:
    core = configured(restart={"backoff_initial": 29.0, "stable_after": 1000})
    core.active(manifest(tmp_path, "a"))
    core.router.table.add("a", 11, "command:a:*", 50, "message")
    core.exit("a")
    core.clock.advance(0)  # the first restart is at once
    core.started("a")
    core.hello("a")
    core.come_back("a", 11, "command:a:*")
    core.exit("a")  # the second after 29 s
    held = send(core, timeout=30.0)  # the caller allows 30 s, as request_timeout does
    core.clock.advance(29.0)
    core.started("a")
    core.hello("a")
    core.come_back("a", 11, "command:a:*")
    [call] = calls(core)  # delivered with 1 s left
    worker = core.slots["a"].worker
    assert worker is not None
    core.wait(6.5)  # the handler takes 6.5 s: well within the 30 s its caller allowed it
    assert held.calls == 1  # the caller was told DeadlineExceeded at its deadline: fine
    assert worker.kill_cause is None  # but the worker is judged by the caller's 30 s
    assert call.cid


# -- two starting plugins calling each other from their activate ----------------------

def test_two_starting_plugins_calling_each_other_are_not_held_behind_each_other(
        tmp_path: Path) -> None:
    core = configured()
    for pid in ("a", "b"):
        core.load(manifest(tmp_path, pid))
        core.started(pid)
        core.hello(pid)
        core.answer(pid, "initialized")
        core.lifecycle.activate(pid, Answer())  # both in their activate phase now
    a_to_b = send(core, "command:b:x", sender="a")
    b_to_a = send(core, "command:a:x", sender="b")
    # Were both held, each activate would wait on a call waiting for the other's activate.
    assert (a_to_b.calls, b_to_a.calls) == (0, 1)


# -- more checks that hold -----------------------------------------------------------------

@pytest.mark.parametrize("how", ["dies before hello", "fork server fails", "no hello"])
def test_a_failed_recover_keeps_calls_held_then_gives_up_at_once(tmp_path: Path,
                                                                  how: str) -> None:
    core = configured(restart={"max_restarts": 1, "backoff_initial": 0.5})
    core.active(manifest(tmp_path, "a"))
    core.router.table.add("a", 11, "command:a:*", 50, "message")
    core.exit("a")
    held = send(core, timeout=100.0)
    core.clock.advance(0)  # recover
    if how == "dies before hello":
        core.started("a")
        core.exit("a")
    elif how == "fork server fails":
        core.workers.spawns[-1].failed(OSError("the fork server exited"))
    else:
        core.wait(core.config.start_timeout)
    failed_with(held, PluginNotActiveError, "will not become active", "failed")
    assert core.router.waits.count("a") == 0


def test_a_recover_interrupted_by_a_stop_fails_held_calls(core: Core) -> None:
    core.exit("a")
    held = send(core)
    core.clock.advance(0)
    core.started("a")
    stopped = Answer()
    core.lifecycle.stop("a", stopped)
    failed_with(held, PluginNotActiveError, "will not become active")


def test_held_calls_keep_order_with_calls_arriving_after_the_settle(core: Core) -> None:
    core.exit("a")
    first = [send(core, tag=n) for n in range(3)]
    back(core)
    after = send(core, tag=3)
    assert [c.body for c in calls(core)] == [pack_value(n) for n in range(4)]
    assert all(a.calls == 0 for a in [*first, after])


def test_held_calls_reach_the_plugin_before_a_deactivate_queued_behind_its_recover(
        core: Core) -> None:
    core.exit("a")
    held = send(core)
    core.clock.advance(0)  # recover under way
    core.lifecycle.deactivate("a", Answer())  # queued behind it (a deactivate interrupts none)
    core.started("a")
    core.hello("a")
    core.come_back("a", 11, "command:a:*")
    sent = record_names(core.outbox.take("a"))
    assert held.calls == 0
    assert sent == ["Call", "deactivate"], sent
