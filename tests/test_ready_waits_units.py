"""Calls wait for ready (ready_waits) on fake ports: a call to a plugin that is starting or
restarting is held, in order, and goes to it once it is active; it fails at its deadline,
at once when the plugin will not be active, when the queue is full, or when it asked to fail
fast. Calls in flight at a crash are never held or re-sent if the worker had begun them;
those it had not begun wait for its replacement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spec_kit_runtime.errors import (
    DeadlineExceeded,
    PluginNotActiveError,
    RoutingError,
    WorkerDiedError,
)
from spec_kit_runtime.plugins.config import config_from_data
from spec_kit_runtime.supervisor.ports import Sent
from spec_kit_runtime.wire.codec import pack_value
from spec_kit_runtime.wire.protocol import Call, Readiness, Reply, Send
from supervisor_fakes import Answer, Core, failed_with, manifest


def configured(**runtime: Any) -> Core:
    runtime.setdefault("restart", {"backoff_initial": 0.5, "stable_after": 1000})
    return Core(config_from_data({"runtime": runtime}, Path("c.yaml")))


def active_a(tmp_path: Path) -> Core:
    """Plugin a active, handling command:a:* (sub 11)."""
    core = configured()
    core.active(manifest(tmp_path, "a"))
    core.router.table.add("a", 11, "command:a:*", 50, "message")
    return core


@pytest.fixture
def core(tmp_path: Path) -> Core:
    return active_a(tmp_path)


def send(core: Core, address: str = "command:a:go", *, sender: str | None = None,
         timeout: float = 0.0, ready: Readiness = Readiness.DEFAULT, tag: int = 0) -> Answer:
    answer = Answer()
    core.router.route(sender, Send(77, address, "", timeout, pack_value(tag), int(ready)),
                      answer)
    return answer


def calls(core: Core) -> list[Call]:
    return [r for r in core.outbox.take("a") if isinstance(r, Call)]


def back(core: Core) -> None:
    """The backoff passes, the replacement comes up active and subscribes again."""
    core.clock.advance(0.5)
    core.started("a")
    core.hello("a")
    core.come_back("a", 11, "command:a:*")


def test_calls_during_a_restart_wait_and_go_in_order_to_the_replacement(core: Core) -> None:
    core.exit("a")
    assert core.slots["a"].status == "restarting"
    waiting = [send(core, tag=n) for n in range(3)]
    assert all(w.calls == 0 for w in waiting) and calls(core) == []
    assert core.router.waits.count("a") == 3

    back(core)
    delivered = calls(core)
    assert [c.body for c in delivered] == [pack_value(n) for n in range(3)]  # in order
    assert core.router.waits.count("a") == 0
    for call in delivered:
        core.router.replied("a", Reply(call.cid, True, pack_value("done")))
    assert [w.value for w in waiting] == ["done"] * 3


def test_a_held_call_keeps_what_is_left_of_its_deadline(core: Core) -> None:
    core.exit("a")
    answer = send(core, timeout=2.0)
    back(core)  # 0.5 s of the 2 spent waiting
    [call] = calls(core)
    core.clock.advance(1.49)
    core.router.expire(core.clock.now())
    assert answer.calls == 0
    core.clock.advance(0.02)
    core.router.expire(core.clock.now())
    failed_with(answer, DeadlineExceeded, "did not answer 'command:a:go' within 2s")  # its own
    assert call.cid  # it was sent: the worker is judged by its own deadline


def test_a_held_call_fails_at_its_deadline_saying_what_the_plugin_was_doing(
        core: Core) -> None:
    core.exit("a")
    answer = send(core, timeout=0.25)
    core.clock.advance(0.25)
    failed_with(answer, DeadlineExceeded, "plugin 'a' did not become active within 0.25s",
                "'command:a:go'", "it is loading, recover under way (last exit: killed by "
                "SIGKILL)")  # the first restart is at once; its worker never came
    assert core.router.waits.count("a") == 0
    back(core)
    assert calls(core) == []  # not sent later


@pytest.mark.parametrize("how", ["gave up", "stopped", "unloaded"])
def test_held_calls_fail_at_once_when_the_plugin_will_not_be_active(tmp_path: Path,
                                                                     how: str) -> None:
    core = configured(restart={"max_restarts": 1, "backoff_initial": 0.5})
    core.active(manifest(tmp_path, "a"))
    core.exit("a")
    answer = send(core)
    if how == "gave up":
        core.clock.advance(0)  # the first restart is at once
        core.started("a")
        core.hello("a")
        core.answer("a", ok=False)  # it fails: a second restart would pass max_restarts
        expected = "failed"
    elif how == "stopped":
        core.lifecycle.stop("a", Answer())
        expected = "stopped"
    else:
        core.lifecycle.unload("a", Answer())
        core.converse("a")
        expected = "unloaded"
    failed_with(answer, PluginNotActiveError, "plugin 'a' will not become active", expected)


def test_a_call_to_a_plugin_loading_then_activating_waits_for_the_activate(
        tmp_path: Path) -> None:
    """As run's start and a container do: the activate is asked when the load answers."""
    core = configured()
    activated = Answer()
    core.lifecycle.load(manifest(tmp_path, "p"), {},
                        lambda ok, body: core.lifecycle.activate("p", activated))
    held = send(core, "command:p:go")
    core.up("p")  # load and initialize answered: the activate has begun
    assert held.calls == 0 and core.slots["p"].busy == "activate"
    core.router.table.add("p", 5, "command:p:*", 50, "message")
    core.answer("p", "active")
    assert activated.ok and held.calls == 0
    [call] = [r for r in core.outbox.take("p") if isinstance(r, Call)]
    assert call.address == "command:p:go"


def test_a_call_to_a_plugin_that_loads_and_stays_initialized_fails_when_it_has(
        tmp_path: Path) -> None:
    core = configured()
    core.load(manifest(tmp_path, "p"))
    answer = send(core, "command:p:go")
    assert answer.calls == 0
    core.up("p")  # initialized, and no activate asked
    failed_with(answer, PluginNotActiveError, "plugin 'p' will not become active",
                "initialized")
    again = send(core, "command:p:go", ready=Readiness.WAIT)  # nothing under way now
    failed_with(again, PluginNotActiveError, "'p' is initialized")


def test_a_full_queue_refuses_at_once(tmp_path: Path) -> None:
    core = configured(ready_queue=2)
    core.active(manifest(tmp_path, "a"))
    core.exit("a")
    held = [send(core), send(core)]
    refused = send(core)
    failed_with(refused, PluginNotActiveError, "2 calls wait for it already",
                "runtime.ready_queue")
    assert [h.calls for h in held] == [0, 0]


@pytest.mark.parametrize(("default", "ready", "waits"), [
    (True, Readiness.DEFAULT, True),
    (True, Readiness.FAIL_FAST, False),
    (False, Readiness.DEFAULT, False),
    (False, Readiness.WAIT, True),
])
def test_the_default_is_configurable_and_a_call_may_choose(
        tmp_path: Path, default: bool, ready: Readiness, waits: bool) -> None:
    core = configured(wait_for_ready=default)
    core.active(manifest(tmp_path, "a"))
    core.exit("a")
    answer = send(core, ready=ready)
    if waits:
        assert answer.calls == 0 and core.router.waits.count("a") == 1
    else:
        failed_with(answer, PluginNotActiveError, "'a' is restarting")


def test_calls_in_flight_at_a_crash_fail_with_it_and_are_not_sent_again(core: Core) -> None:
    in_flight = send(core)
    assert len(calls(core)) == 1
    core.exit("a")
    failed_with(in_flight, WorkerDiedError, "worker killed by SIGKILL")
    back(core)
    assert calls(core) == []


# -- calls the dead worker had not begun (its call progress page: Exited.began) ------------

def sent(core: Core, n: int, **how: Any) -> tuple[list[Answer], list[Call]]:
    """``n`` calls sent to a's worker (tags 0..n-1), and the records it was sent."""
    answers = [send(core, tag=tag, **how) for tag in range(n)]
    return answers, calls(core)


def test_calls_the_worker_had_not_begun_wait_for_its_replacement(core: Core) -> None:
    answers, delivered = sent(core, 3)
    core.exit("a", began=delivered[0].cid)  # it was in the first; two waited in its socket
    failed_with(answers[0], WorkerDiedError, "worker killed by SIGKILL")
    assert [a.calls for a in answers[1:]] == [0, 0] and core.router.waits.count("a") == 2
    assert core.slots["a"].calls.figures().in_flight == 0  # counted again when re-sent
    back(core)
    again = calls(core)
    assert [c.body for c in again] == [pack_value(1), pack_value(2)]  # in order, once each
    for call in again:
        core.router.replied("a", Reply(call.cid, True, pack_value(call.body)))
    assert [a.value for a in answers[1:]] == [pack_value(1), pack_value(2)]
    figures = core.slots["a"].calls.figures()
    assert (figures.handled, figures.errors, figures.in_flight) == (3, 1, 0)  # each once


@pytest.mark.parametrize(("began", "failed"), [
    (None, 3),  # not known: every call in flight fails, as before
    (0, 0),  # it had begun none (killed idle, the calls on their way)
    (2, 2),  # the first two (a nested call begins in order too)
    (3, 3),
    (99, 3),  # a value past the last sent (the plugin wrote its page): all begun
])
def test_which_calls_fail_is_every_call_up_to_the_last_begun(core: Core, began: int | None,
                                                             failed: int) -> None:
    answers, delivered = sent(core, 3)
    first = delivered[0].cid - 1
    core.exit("a", began=None if began is None else (began and first + began))
    assert [a.calls for a in answers] == [1] * failed + [0] * (3 - failed)
    assert all(isinstance(a.error, WorkerDiedError) for a in answers[:failed])
    assert core.router.waits.count("a") == 3 - failed


def test_an_unbegun_call_that_asked_to_fail_fast_fails_with_the_death(core: Core) -> None:
    [answer], _ = sent(core, 1, ready=Readiness.FAIL_FAST)
    core.exit("a", began=0)
    failed_with(answer, WorkerDiedError, "worker killed by SIGKILL")


def test_unbegun_calls_go_ahead_of_those_held_since(core: Core) -> None:
    """Sent first, they are delivered first: held after them, a call sent to the worker's
    connection once it was gone (before the death was seen)."""
    first, _ = sent(core, 1)
    core.outbox.outcome = Sent.GONE
    later = send(core, tag=1)
    core.outbox.outcome = Sent.OK
    core.exit("a", began=0)
    back(core)
    assert [c.body for c in calls(core)] == [pack_value(0), pack_value(1)]
    assert first[0].calls == later.calls == 0


def test_a_call_is_put_back_twice_at_most(core: Core) -> None:
    """Every replacement died before it began the call (taking it off its socket may be
    what kills them: a frame too large for their memory): the third death fails it."""
    [answer], _ = sent(core, 1)
    for _ in range(2):
        core.exit("a", began=0)
        back(core)
        assert len(calls(core)) == 1 and answer.calls == 0
    core.exit("a", began=0)
    failed_with(answer, WorkerDiedError, "worker killed by SIGKILL")
    core.clock.advance(1.0)  # the third restart's backoff is longer
    back(core)
    assert calls(core) == []


def test_a_call_that_kills_every_worker_costs_the_same_restarts_wherever_it_waits(
        core: Core) -> None:
    """Behind four others, the poison call still fails at the third death, with the calls
    that were put back as often."""
    answers, _ = sent(core, 5)
    deaths = 0
    while answers[4].calls == 0:
        core.exit("a", began=0)
        deaths += 1
        core.clock.advance(1.0)  # whatever the backoff
        back(core)
        calls(core)
    assert deaths == 3 and all(a.calls == 1 for a in answers)


def test_a_call_held_before_it_was_sent_may_still_be_put_back(core: Core) -> None:
    """Held while the plugin restarted, then sent: never put back yet, so once may be."""
    core.exit("a")
    answer = send(core)
    back(core)
    calls(core)
    core.exit("a", began=0)
    back(core)
    [call] = calls(core)
    core.router.replied("a", Reply(call.cid, True, pack_value("done")))
    assert answer.value == "done"


def test_a_plugins_call_to_itself_is_not_put_back(core: Core) -> None:
    """Its sender is the worker that died: nobody is left to answer."""
    [answer], _ = sent(core, 1, sender="a")
    core.exit("a", began=0)
    failed_with(answer, WorkerDiedError, "worker killed by SIGKILL")
    assert core.router.waits.count("a") == 0


def test_bodies_past_the_senders_budget_fail_with_the_death(core: Core) -> None:
    core.router.kept.host = 2 * len(pack_value(0))  # room for two of the host's calls
    answers, _ = sent(core, 3)
    assert core.router.kept.kept((None, "a")) == core.router.kept.host
    core.exit("a", began=0)
    assert [a.calls for a in answers] == [0, 0, 1]  # the third was not kept
    failed_with(answers[2], WorkerDiedError, "worker killed by SIGKILL")
    assert core.router.kept.kept() == 0  # put back: no longer in flight


def test_a_plugin_flooding_another_uses_up_its_own_budget_only(core: Core,
                                                                tmp_path: Path) -> None:
    """b's large calls to a fill b's share for a, not that of a's other callers (c, the
    host)."""
    for other in ("b", "c"):
        core.active(manifest(tmp_path, other))
    core.router.kept.plugin = 1000
    flood = [send(core, sender="b", tag="x" * 300) for _ in range(4)]  # the fourth: not kept
    from_c, from_host = send(core, sender="c"), send(core)
    assert core.router.kept.kept(("b", "a")) <= 1000
    core.exit("a", began=0)
    assert [a.calls for a in flood] == [0, 0, 0, 1]
    assert from_c.calls == from_host.calls == 0  # both wait for the replacement
    back(core)
    assert len(calls(core)) == 5


def test_a_slow_plugin_uses_up_no_share_of_its_callers_calls_to_others(
        core: Core, tmp_path: Path) -> None:
    """The host's large calls held by a slow b fill the host's share for b only: its calls
    to a are still kept, and wait when a's worker dies."""
    core.active(manifest(tmp_path, "b"))
    core.router.table.add("b", 21, "command:b:*", 50, "message")
    core.router.kept.host = 1000
    for _ in range(4):
        send(core, "command:b:go", tag="x" * 300)  # b never answers them
    [to_a], _ = sent(core, 1)
    core.exit("a", began=0)
    assert to_a.calls == 0 and core.router.waits.count("a") == 1


def test_the_budget_is_given_back_as_calls_are_answered_or_expire(core: Core) -> None:
    _, delivered = sent(core, 2, timeout=1.0)
    assert core.router.kept.kept((None, "a")) == 2 * len(pack_value(0))
    core.router.replied("a", Reply(delivered[0].cid, True, pack_value("done")))
    assert core.router.kept.kept((None, "a")) == len(pack_value(0))
    core.clock.advance(1.0)
    core.router.expire(core.clock.now())
    assert core.router.kept.kept() == 0


def test_a_call_to_a_gone_connection_is_held_whatever_the_budget(core: Core) -> None:
    """Never delivered: nothing needs keeping, and the budget is given back at once."""
    core.router.kept.host = 0
    core.outbox.outcome = Sent.GONE
    answer = send(core)
    core.outbox.outcome = Sent.OK
    assert answer.calls == 0 and core.router.waits.count("a") == 1
    assert core.router.kept.kept() == 0


def test_a_call_held_for_a_gone_connection_may_still_be_put_back(core: Core) -> None:
    """It never reached a worker: it may still be put back as often as any call."""
    core.outbox.outcome = Sent.GONE
    answer = send(core)
    core.outbox.outcome = Sent.OK
    core.exit("a", began=0)
    for _ in range(2):  # each replacement died before it began it
        back(core)
        calls(core)
        core.exit("a", began=0)
        assert answer.calls == 0
        core.clock.advance(1.0)  # whatever the backoff
    back(core)
    [call] = calls(core)
    core.router.replied("a", Reply(call.cid, True, pack_value("done")))
    assert answer.value == "done"


def test_a_call_put_back_goes_to_no_other_plugin(core: Core, tmp_path: Path) -> None:
    """Its replacement no longer handles the address; another plugin does: the call,
    which may have had effects if the dead worker's page lied, is not run there."""
    core.active(manifest(tmp_path, "b"))
    core.router.table.add("a", 12, "generator:g", 10, "message")
    core.router.table.add("b", 13, "generator:g", 90, "message")
    answer = send(core, "generator:g")
    assert len(calls(core)) == 1  # a's, the first by priority (lowest number)
    core.exit("a", began=0)
    back(core)  # subscribes command:a:* again, not generator:g
    failed_with(answer, PluginNotActiveError, "'a' no longer handles 'generator:g'")
    assert core.outbox.take("b") == []


def test_a_call_put_back_goes_to_its_plugin_though_another_comes_first_now(
        core: Core, tmp_path: Path) -> None:
    """b handles generator:g first, but was restarting when the call went to a; once both
    are back, the call put back for a goes to a."""
    core.active(manifest(tmp_path, "b"))
    core.router.table.add("a", 12, "generator:g", 60, "message")
    core.router.table.add("b", 13, "generator:g", 10, "message")
    core.exit("b")  # restarting: a handles generator:g meanwhile
    answer = send(core, "generator:g")  # to a, active: nothing to wait for
    [call] = calls(core)
    core.exit("a", began=0)
    assert answer.calls == 0  # put back
    core.clock.advance(0.5)
    core.started("b")
    core.hello("b")
    core.come_back("b", 13, "generator:g")
    core.started("a")
    core.hello("a")
    core.router.table.add("a", 12, "generator:g", 60, "message")  # registered as it starts
    core.come_back("a", 11, "command:a:*")
    [again] = calls(core)
    assert again.body == call.body and core.outbox.take("b") == []


def test_a_call_never_sent_to_a_worker_goes_to_whichever_plugin_handles_it(
        core: Core, tmp_path: Path) -> None:
    """Held because a's connection was gone, it reached no worker: not put back, so not
    bound to a; when a no longer handles the address, b does."""
    core.active(manifest(tmp_path, "b"))
    core.router.table.add("a", 12, "generator:g", 10, "message")
    core.router.table.add("b", 13, "generator:g", 90, "message")
    core.outbox.outcome = Sent.GONE
    answer = send(core, "generator:g")
    core.outbox.outcome = Sent.OK
    core.exit("a")
    back(core)  # a subscribes command:a:* again, not generator:g
    [call] = [r for r in core.outbox.take("b") if isinstance(r, Call)]
    core.router.replied("b", Reply(call.cid, True, pack_value("from b")))
    assert answer.value == "from b"


def test_a_call_put_back_then_held_for_a_gone_connection_keeps_its_count(
        core: Core) -> None:
    """Put back once, sent again to a connection already gone: held, still counted once.
    The death of that worker is not the call's (it never reached it); of the next two
    workers it reaches, the first's death puts it back a second time, the second's fails
    it: four deaths, three with the call in the worker."""
    [answer], _ = sent(core, 1)
    core.exit("a", began=0)  # put back: 1
    core.clock.advance(0.5)
    core.started("a")
    core.hello("a")
    core.outbox.outcome = Sent.GONE
    core.come_back("a", 11, "command:a:*")  # active: sent again, to a connection gone
    core.outbox.outcome = Sent.OK
    assert answer.calls == 0 and core.router.waits.count("a") == 1
    deaths = 1
    while True:
        core.exit("a", began=0)
        deaths += 1
        if answer.calls:
            break
        core.clock.advance(1.0)  # whatever the backoff
        back(core)
        calls(core)
    assert deaths == 4
    failed_with(answer, WorkerDiedError, "worker killed by SIGKILL")


def test_a_failing_answer_strands_no_other_call_of_the_death(core: Core) -> None:
    def raising(ok: bool, body: bytes) -> None:
        raise RuntimeError("a responder's bug")

    core.router.route(None, Send(1, "command:a:go", "", 1.0, pack_value(0),
                                 int(Readiness.FAIL_FAST)), raising)
    other = send(core, timeout=1.0, ready=Readiness.FAIL_FAST)
    core.exit("a", began=0)
    failed_with(other, WorkerDiedError, "worker killed by SIGKILL")


def test_unbegun_calls_keep_their_deadline(core: Core) -> None:
    [answer], _ = sent(core, 1, timeout=0.3)
    core.exit("a", began=0)
    core.clock.advance(0.3)  # the backoff (0.5 s) outlasts it
    failed_with(answer, DeadlineExceeded, "plugin 'a' did not become active within 0.3s")


def test_unbegun_calls_fail_at_once_when_no_restart_follows(tmp_path: Path) -> None:
    core = configured(restart={"max_restarts": 0})
    core.active(manifest(tmp_path, "a"))
    core.router.table.add("a", 11, "command:a:*", 50, "message")
    [answer], _ = sent(core, 1)
    core.exit("a", began=0)
    failed_with(answer, PluginNotActiveError, "plugin 'a' will not become active: failed")


def test_unbegun_calls_fail_at_once_when_the_worker_dies_in_an_operation(
        core: Core) -> None:
    """No restart follows a death during a stop (the stop's caller hears of it): the calls
    put back fail then, not at their deadline."""
    [answer], _ = sent(core, 1)
    stopped = Answer()
    core.lifecycle.stop("a", stopped)
    core.exit("a", began=0)
    assert stopped.calls == 1
    failed_with(answer, PluginNotActiveError, "plugin 'a' will not become active")
    assert core.router.waits.count("a") == 0


def test_unbegun_calls_fail_at_once_after_an_end_the_supervisor_asked_for(core: Core) -> None:
    """An end asked for outside any operation (a worker killed after its operation
    failed, say) is neither an operation's nor the restart policy's: nothing else would
    settle the calls put back, which would wait out their deadline."""
    [answer], _ = sent(core, 1)
    worker = core.slots["a"].worker
    assert worker is not None
    worker.expected_exit = True
    core.exit("a", began=0)
    failed_with(answer, PluginNotActiveError, "plugin 'a' will not become active")


def test_a_plugins_call_to_another_waits_too(core: Core, tmp_path: Path) -> None:
    core.active(manifest(tmp_path, "b"))
    core.exit("a")
    answer = send(core, sender="b")
    assert answer.calls == 0
    back(core)
    [call] = calls(core)
    assert call.source == "b"


def test_events_and_hooks_do_not_wait(core: Core) -> None:
    core.router.table.add("a", 12, "event:x:*", 50, "message")
    core.router.table.add("a", 13, "hook:h", 50, "message")
    core.exit("a")
    event, hook = send(core, "event:x:done"), send(core, "hook:h")
    assert event.value == 0 and hook.value == []
    assert core.router.waits.count("a") == 0


def test_a_send_with_an_unknown_readiness_is_refused(core: Core) -> None:
    answer = Answer()
    core.router.route(None, Send(1, "command:a:go", "", 0.0, b"", 7), answer)
    failed_with(answer, RoutingError, "ready must be one of [0, 1, 2], not 7")


def test_status_shows_the_calls_waiting_for_each_plugin(core: Core) -> None:
    from spec_kit_runtime.wire.codec import unpack_value
    from spec_kit_runtime.wire.protocol import Control
    core.exit("a")
    send(core), send(core)
    answer = Answer()
    core.control.handle(b"peer", Control(1, "status", b""), answer)
    [plugin] = unpack_value(answer.body)["plugins"]
    assert plugin["waiting"] == 2


def test_a_call_to_a_worker_already_gone_waits_for_its_replacement(core: Core) -> None:
    """Sent between the worker's death and the supervisor seeing it: its connection is gone
    (the outbox says so), so the call waits as if the restart had begun."""
    core.outbox.outcome = Sent.GONE
    answer = send(core)
    core.outbox.outcome = Sent.OK
    assert answer.calls == 0 and core.router.waits.count("a") == 1
    assert core.slots["a"].calls.figures().in_flight == 0  # not counted until it is sent
    core.exit("a")
    back(core)
    [call] = calls(core)
    core.router.replied("a", Reply(call.cid, True, pack_value("done")))
    assert answer.value == "done"
    assert core.slots["a"].calls.figures().handled == 1


def test_a_call_to_a_worker_already_gone_fails_fast_if_asked(core: Core) -> None:
    core.outbox.outcome = Sent.GONE
    answer = send(core, ready=Readiness.FAIL_FAST)
    failed_with(answer, PluginNotActiveError, "'a' cannot be reached for 'command:a:go'")


def test_a_waiting_call_fails_at_once_when_the_restart_policy_gives_up(
        tmp_path: Path) -> None:
    core = configured(restart={"max_restarts": 0})
    core.active(manifest(tmp_path, "a"))
    core.router.table.add("a", 11, "command:a:*", 50, "message")
    core.outbox.outcome = Sent.GONE
    answer = send(core)
    core.outbox.outcome = Sent.OK
    assert answer.calls == 0
    core.exit("a")  # no restart allowed: failed
    failed_with(answer, PluginNotActiveError, "plugin 'a' will not become active: failed")
