"""The control operations on fake ports (supervisor_fakes): each op's arguments checked, its
answer decoded as a client sees it (plain data: status, health, plugins), the lifecycle ops
passed on, and the subscriptions a client's connection may hold. No process, no socket."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spec_kit_runtime._version import __version__
from spec_kit_runtime.errors import (
    DeadlineExceeded,
    ManifestError,
    PluginStateError,
    ProtocolError,
    RoutingError,
    ScopeError,
    WorkerDiedError,
)
from spec_kit_runtime.plugins.config import RuntimeConfig
from spec_kit_runtime.plugins.facts import MAX_FACTS_ASKED
from spec_kit_runtime.policy.restart import RestartPolicy
from spec_kit_runtime.supervisor.replies import caller_key
from spec_kit_runtime.wire.codec import pack_value
from spec_kit_runtime.wire.protocol import Call, Control, Reply, Send, Stop
from supervisor_fakes import ABOUT, Answer, Core, failed_with, manifest

PEER = b"client-connection"
OTHER = b"another-connection"
NO_ARGS = object()


def control(core: Core, op: str, args: Any = NO_ARGS, peer: bytes = PEER,
            body: bytes | None = None) -> Answer:
    """Run control operation ``op`` with ``args`` (packed; none: an empty body) for ``peer``."""
    if body is None:
        body = b"" if args is NO_ARGS else pack_value(args)
    answer = Answer()
    core.control.handle(peer, Control(9, op, body), answer)
    return answer


@pytest.fixture
def core(tmp_path: Path) -> Core:
    """Plugin a active."""
    core = Core()
    core.active(manifest(tmp_path, "a"))
    return core


# -- dispatch --------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["bogus", "", "Status", "status "])
def test_an_unknown_operation_is_a_protocol_error(core: Core, op: str) -> None:
    failed_with(control(core, op), ProtocolError, f"unknown control operation '{op}'")


@pytest.mark.parametrize("args", [[1], "plugin", 3, True, [{"plugin": "a"}]])
def test_arguments_must_be_a_map(core: Core, args: Any) -> None:
    failed_with(control(core, "stop", args), ProtocolError, "arguments of 'stop' must be a map")
    assert core.slots["a"].busy is None  # nothing was started


@pytest.mark.parametrize("args", [[], 0, "", False])
def test_arguments_that_are_falsy_but_not_a_map_are_refused_too(core: Core, args: Any) -> None:
    failed_with(control(core, "shutdown", args), ProtocolError,
                "arguments of 'shutdown' must be a map")
    assert core.shutdowns == 0


def test_a_malformed_body_is_a_protocol_error(core: Core) -> None:
    failed_with(control(core, "ping", body=b"\xc1"), ProtocolError, "malformed")


@pytest.mark.parametrize("args", [NO_ARGS, None, {}, {"unused": 1}])
def test_ping_answers_pong(core: Core, args: Any) -> None:
    answer = control(core, "ping", args)
    assert answer.ok is True and answer.value == "pong" and answer.calls == 1


# -- status, health, plugins ----------------------------------------------------------------

def test_status_describes_the_supervisor_and_each_plugin(core: Core, tmp_path: Path) -> None:
    core.load(manifest(tmp_path, "b"))
    core.up("b")
    router = core.router
    router.table.add("a", 11, "command:a:*", 50, "message")
    router.table.add("a", 12, "event:system:*", 50, "message")
    router.table.add("a", 13, "command:a:*", 10, "message")  # the same pattern: listed once
    router.serve_caller(PEER, 14, "event:a:*", 50, serving=False)  # a client's, not a's
    answered, late, waiting = Answer(), Answer(), Answer()
    for answer in (answered, late, waiting):
        router.route(None, Send(1, "command:a:go", "", 5.0 if answer is late else 0.0, b""),
                     answer)
    first = next(r for r in core.outbox.take("a") if isinstance(r, Call))
    router.replied("a", Reply(first.cid, True, pack_value("ok")))
    core.wait(5.0)
    assert answered.ok and isinstance(late.error, DeadlineExceeded) and waiting.calls == 0

    status = control(core, "status").value
    assert status["supervisor"] == {
        "pid": os.getpid(), "version": __version__, **ABOUT, "plugins": 2,
        "totals": {"handled": 2, "errors": 1, "in_flight": 1, "restarts": 0}}
    assert list(status["supervisor"]) == [  # the order status --json has always shown
        "pid", "version", "endpoint", "uptime", "plugins", "forkserver_pid", "start_method",
        "cgroups", "http", "log_file", "totals"]
    plugins = {entry["id"]: entry for entry in status["plugins"]}
    assert [entry["id"] for entry in status["plugins"]] == ["a", "b"]
    a, b = plugins["a"], plugins["b"]
    assert (a["state"], b["state"]) == ("active", "initialized")
    assert a["subscriptions"] == ["command:a:*", "event:system:*"] and b["subscriptions"] == []
    assert a["pid"] == core.slots["a"].worker.pid  # type: ignore[union-attr]
    assert (a["name"], a["version"], a["busy"], a["queued"]) == ("A", "1.0.0", None, [])
    assert {k: a["messages"][k] for k in ("handled", "errors", "in_flight")} == {
        "handled": 2, "errors": 1, "in_flight": 1}


def test_status_counts_restarts(core: Core) -> None:
    core.exit("a")
    core.wait(0.0)  # the first restart is immediate
    core.up("a", "active")
    status = control(core, "status").value
    assert status["supervisor"]["totals"]["restarts"] == 1
    [a] = status["plugins"]
    assert (a["state"], a["restarts"], a["last_exit"]) == ("active", 1, "killed by SIGKILL")


def _nothing(_core: Core, _tmp: Path) -> None:
    pass


def _begin(core: Core, tmp: Path, *plugins: tuple[str, tuple[str, ...]]) -> None:
    core.startup.begin([(manifest(tmp, p, deps), {}) for p, deps in plugins], lambda: None)


def _starting(core: Core, tmp: Path) -> None:
    _begin(core, tmp, ("a", ()), ("b", ("a",)))


def _started(core: Core, tmp: Path) -> None:
    _begin(core, tmp, ("a", ()))
    core.up("a")
    core.answer("a", "active")


def _start_failed(core: Core, tmp: Path) -> None:
    _begin(core, tmp, ("a", ()), ("b", ("a",)))
    core.started("a")
    core.hello("a")
    core.answer("a", ok=False)  # its initialize fails


def _refused(core: Core, tmp: Path) -> None:
    _begin(core, tmp, ("b", ("zz",)))


def _failed_then_started(core: Core, tmp: Path) -> None:
    _begin(core, tmp, ("a", ()))
    core.started("a")
    core.hello("a")
    core.answer("a", ok=False)
    core.exit("a")  # the failed start's worker, killed
    started = control(core, "start", {"plugin": "a"})
    core.up("a", "active")
    assert started.ok


def _restarting(core: Core, tmp: Path) -> None:
    core.active(manifest(tmp, "a"))
    core.exit("a")


def _restarted(core: Core, tmp: Path) -> None:
    _restarting(core, tmp)
    core.wait(0.0)
    core.up("a", "active")
    core.wait(10.0)


def _stable(core: Core, tmp: Path) -> None:
    _restarted(core, tmp)
    core.wait(20.0)  # up stable_after (30 s) since the restart


def _temporary_crashed(core: Core, tmp: Path) -> None:
    core.active(manifest(tmp, "a", restart={"type": "temporary"}))
    core.exit("a")


def _crashed_during_an_operation(core: Core, tmp: Path) -> None:
    core.active(manifest(tmp, "a"))
    deactivated = Answer()
    core.lifecycle.deactivate("a", deactivated)
    core.exit("a")  # while its deactivate phase is in flight
    assert isinstance(deactivated.error, WorkerDiedError)  # its caller gets the error


@pytest.mark.parametrize(("make", "status", "ready", "reasons"), [
    (_nothing, "healthy", True, []),
    (_starting, "degraded", False, ["a: starting", "b: starting"]),
    (_started, "healthy", True, []),
    (_start_failed, "unhealthy", False, ["b: not started (its dependency 'a' did not start)",
                                         "a: did not start (initialize failed)"]),
    (_refused, "unhealthy", False, ["b: not started (needs 'zz', which is not there)"]),
    (_failed_then_started, "healthy", True, []),  # its failed start is not held against it
    (_restarting, "degraded", False, ["a: restarting (last exit: killed by SIGKILL)"]),
    (_restarted, "degraded", True, ["a: restarted 10s ago (last exit: killed by SIGKILL)"]),
    (_stable, "healthy", True, []),
    (_temporary_crashed, "unhealthy", False,
     ["a: crashed, not restarted (last exit: killed by SIGKILL)"]),
    (_crashed_during_an_operation, "unhealthy", False,
     ["a: crashed, not restarted (last exit: killed by SIGKILL)"]),
])
def test_health_is_a_verdict_over_startup_and_plugins(
        tmp_path: Path, make: Callable[[Core, Path], None], status: str, ready: bool,
        reasons: list[str]) -> None:
    core = Core()
    make(core, tmp_path)
    answer = control(core, "health")
    assert answer.ok is True
    assert answer.value == {"status": status, "live": True, "ready": ready,
                            "reasons": reasons}


def test_a_plugin_whose_restarts_gave_up_makes_the_supervisor_unhealthy(tmp_path: Path
                                                                        ) -> None:
    core = Core(RuntimeConfig(restart=RestartPolicy(max_restarts=0)))
    core.active(manifest(tmp_path, "a"))
    core.exit("a", 3)
    health = control(core, "health").value
    assert (health["status"], health["ready"]) == ("unhealthy", False)
    [reason] = health["reasons"]
    assert reason.startswith("a: failed (gave up restarting: ")
    assert reason.endswith("last: plugin 'a' worker exited with code 3)")


def test_plugins_lists_states_and_facts_only_for_the_ids_asked(core: Core, tmp_path: Path
                                                               ) -> None:
    core.load(manifest(tmp_path, "b"))
    core.up("b")
    core.load(manifest(tmp_path, "c"))  # being loaded
    core.active(manifest(tmp_path, "d"))
    core.exit("d")  # restarting, not yet under way
    again = manifest(tmp_path, "e")
    core.load(again)
    core.started("e")
    core.hello("e")
    core.answer("e", ok=False)  # its initialize fails: an error, its worker being killed
    core.load(again)  # loading again, once that worker is gone
    assert (core.slots["e"].status, core.slots["e"].busy) == ("error", "load")
    answer = control(core, "plugins", {"facts": ["a", "c", "ghost", 7]})
    assert answer.ok is True
    facts = core.slots["a"].facts
    assert facts is not None
    assert answer.value == {
        "a": {"state": "active", "loaded": True, "generation": 1, "facts": facts},
        "b": {"state": "initialized", "loaded": True, "generation": 1, "facts": None},
        "c": {"state": "loading", "loaded": False, "generation": 0, "facts": None},
        "d": {"state": "restarting", "loaded": True, "generation": 1, "facts": None},
        "e": {"state": "loading", "loaded": False, "generation": 1, "facts": None},
    }
    core.wait(0.0)  # d's restart begins: a new worker, new facts to come
    assert control(core, "plugins").value["d"]["state"] == "loading"


@pytest.mark.parametrize("facts", ["a", {"a": True}, 7, ["a"] * (MAX_FACTS_ASKED + 1)])
def test_plugins_refuses_facts_that_are_not_a_short_list(core: Core, facts: Any) -> None:
    failed_with(control(core, "plugins", {"facts": facts}), ProtocolError,
                f"'facts' must be a list of at most {MAX_FACTS_ASKED} ids")


def test_plugins_takes_as_many_facts_as_allowed(core: Core) -> None:
    answer = control(core, "plugins", {"facts": ["a"] * MAX_FACTS_ASKED})
    assert answer.ok is True and answer.value["a"]["facts"] == core.slots["a"].facts


# -- load -----------------------------------------------------------------------------------

def _plugin_folder(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A plugin's folder, its manifest data, and the 'load' arguments for it."""
    root = tmp_path / "n"
    root.mkdir()
    (root / "p.py").write_text("")
    data = {"id": "n", "name": "N", "version": "1.0.0", "file": "p.py", "entry_point": "P"}
    return data, {"manifest": data, "source": str(root / "plugin.json"), "root": str(root)}


def test_load_validates_the_manifest_and_starts_the_plugin(tmp_path: Path) -> None:
    core = Core()
    _, args = _plugin_folder(tmp_path)
    answer = control(core, "load", {**args, "config": {"level": 3}})
    assert answer.calls == 0 and [s.slot.plugin_id for s in core.workers.spawns] == ["n"]
    slot = core.slots["n"]
    assert slot.config == {"level": 3} and slot.info.path == tmp_path / "n" / "p.py"
    core.up("n")
    assert answer.ok is True
    assert answer.value == {"id": "n", "status": "initialized", "plugin": slot.facts,
                            "generation": 1}


@pytest.mark.parametrize(("change", "message"), [
    ({"manifest": NO_ARGS, "source": NO_ARGS}, "load needs 'manifest', 'source' and 'root'"),
    ({"root": NO_ARGS}, "load needs 'manifest', 'source' and 'root'"),
    ({"source": NO_ARGS}, "load needs 'manifest', 'source' and 'root'"),
    ({"source": 1}, "load needs 'manifest', 'source' and 'root'"),
    ({"root": None}, "load needs 'manifest', 'source' and 'root'"),
    ({"config": [1]}, "a plugin config must be a map"),
    ({"config": "level=3"}, "a plugin config must be a map"),
])
def test_load_refuses_missing_or_mistyped_arguments(tmp_path: Path, change: dict[str, Any],
                                                    message: str) -> None:
    core = Core()
    _, args = _plugin_folder(tmp_path)
    args = {k: v for k, v in {**args, **change}.items() if v is not NO_ARGS}
    failed_with(control(core, "load", args), ProtocolError, message)
    assert core.workers.spawns == [] and "n" not in core.slots


@pytest.mark.parametrize(("manifest_change", "field", "reason"), [
    ({"name": NO_ARGS}, "name", "is required"),
    ({"version": "one"}, "version", "is not a semantic version"),
    ({"id": "Not An Id"}, "id", "must start with a lowercase letter"),
    ({"file": "../outside.py"}, "file", "must stay inside the plugin folder"),
    ({"file": "missing.py"}, "file", "does not exist"),
    ({"restart": {"type": "sometimes"}}, "restart", "permanent, transient or temporary"),
])
def test_load_revalidates_the_manifest(tmp_path: Path, manifest_change: dict[str, Any],
                                       field: str, reason: str) -> None:
    core = Core()
    data, args = _plugin_folder(tmp_path)
    changed = {k: v for k, v in {**data, **manifest_change}.items() if v is not NO_ARGS}
    error = failed_with(control(core, "load", {**args, "manifest": changed}), ManifestError,
                        reason)
    assert isinstance(error, ManifestError)
    assert (error.file, error.field) == (args["source"], field)
    assert core.workers.spawns == [] and core.slots == {}


@pytest.mark.parametrize("manifest_data", [None, ["n"], "n"])
def test_load_refuses_a_manifest_that_is_not_a_mapping(tmp_path: Path, manifest_data: Any
                                                      ) -> None:
    core = Core()
    _, args = _plugin_folder(tmp_path)
    error = failed_with(control(core, "load", {**args, "manifest": manifest_data}),
                        ManifestError, "must be a mapping of fields")
    assert isinstance(error, ManifestError) and error.field is None
    assert core.workers.spawns == []


# -- the lifecycle ops ----------------------------------------------------------------------

PLUGIN_OPS = ["activate", "deactivate", "stop", "start", "restart", "unload"]


@pytest.mark.parametrize("op", PLUGIN_OPS)
@pytest.mark.parametrize("args", [{}, {"plugin": None}, {"plugin": 3}, {"plugins": "a"}])
def test_a_plugin_op_needs_a_plugin(core: Core, op: str, args: dict[str, Any]) -> None:
    failed_with(control(core, op, args), ProtocolError, "missing 'plugin'")
    assert core.slots["a"].busy is None and core.outbox.to_workers == []


@pytest.mark.parametrize("op", PLUGIN_OPS)
def test_a_plugin_op_on_an_unknown_plugin_is_a_state_error(core: Core, op: str) -> None:
    error = failed_with(control(core, op, {"plugin": "ghost"}), PluginStateError,
                        "plugin 'ghost' is not loaded")
    assert error.plugin == "ghost"


def test_activate_and_deactivate_run_the_plugins_phases(core: Core) -> None:
    deactivated = control(core, "deactivate", {"plugin": "a"})
    assert deactivated.calls == 0 and core.answer("a", "initialized") == ["deactivate"]
    assert deactivated.ok is True and deactivated.value == {"id": "a", "status": "initialized"}

    activated = control(core, "activate", {"plugin": "a"})
    assert core.answer("a", "active") == ["activate"]
    assert activated.value == {"id": "a", "status": "active"}
    failed_with(control(core, "activate", {"plugin": "a"}), PluginStateError,
                "plugin 'a' is already active")


def test_unload_stops_the_worker_and_forgets_the_plugin(core: Core) -> None:
    unloaded = control(core, "unload", {"plugin": "a"})
    assert core.answer("a", "initialized") == ["deactivate"]
    assert core.answer("a", "shut down") == ["shutdown"]
    assert core.outbox.take("a") == [Stop()]
    core.exit("a", 0)
    assert unloaded.ok is True and unloaded.value == {"id": "a", "status": "unloaded"}
    assert "a" not in core.slots
    assert ("plugin_stopped", {"plugin": "a", "how": "unload",
                               "exit": "exited with code 0"}) in core.events


def test_shutdown_answers_then_begins_the_shutdown_once(core: Core) -> None:
    seen: list[int] = []

    def respond(ok: bool, body: bytes) -> None:
        seen.append(core.shutdowns)
        answer(ok, body)

    answer = Answer()
    core.control.handle(PEER, Control(9, "shutdown", b""), respond)
    assert answer.ok is True and answer.value is True
    assert seen == [0] and core.shutdowns == 1  # the client hears first


# -- subscriptions of a client's connection -------------------------------------------------

SUBSCRIPTION = {"plugin": "", "pattern": "event:a:*", "sub_id": 1}


@pytest.mark.parametrize("change", [
    {"plugin": NO_ARGS}, {"plugin": None}, {"plugin": 1},
    {"pattern": NO_ARGS}, {"pattern": 5},
    {"sub_id": NO_ARGS}, {"sub_id": "1"}, {"sub_id": True}, {"sub_id": 1.0},
    {"priority": 1.5}, {"priority": False}, {"priority": None},
    {"host": "yes"}, {"host": 1}, {"host": None},
])
def test_subscribe_refuses_mistyped_arguments(core: Core, change: dict[str, Any]) -> None:
    args = {k: v for k, v in {**SUBSCRIPTION, **change}.items() if v is not NO_ARGS}
    failed_with(control(core, "subscribe", args), ProtocolError,
                "subscribe needs plugin, pattern, sub_id and priority")
    assert caller_key(PEER) not in core.router.callers


@pytest.mark.parametrize("pattern", ["", "event:a b", "event:a:[x]", "event:" + "x" * 300])
def test_subscribe_refuses_an_invalid_pattern(core: Core, pattern: str) -> None:
    failed_with(control(core, "subscribe", {**SUBSCRIPTION, "pattern": pattern}),
                RoutingError, "invalid pattern: ")
    assert caller_key(PEER) not in core.router.callers


FOLLOWS, SERVES = "follows", "serves"


@pytest.mark.parametrize(("plugin", "host", "pattern", "outcome", "part"), [
    # a plain client follows events, and only events
    ("", False, "event:a:*", FOLLOWS, ""),
    ("", False, "event:system:*", FOLLOWS, ""),
    ("", False, "command:a:*", ScopeError, "events only, not 'command:a:*'"),
    ("", False, "hook:build", ScopeError, "events only, not 'hook:build'"),
    ("", False, "*", ScopeError, "events only, not '*'"),
    # with a plugin's scope: what that plugin could handle
    ("a", False, "command:a:*", SERVES, ""),
    ("a", False, "hook:*", SERVES, ""),
    ("a", False, "event:system:*", SERVES, ""),
    ("a", False, "command:b:*", ScopeError, "'a' may not handle 'command:b:*'"),
    ("a", False, "request:core:*", ScopeError, "'a' may not handle 'request:core:*'"),
    ("a", False, "generatorx:*", ScopeError, "'a' may not subscribe to 'generatorx:*'"),
    # a plugin's scope is that plugin's, host or not
    ("a", True, "command:b:*", ScopeError, "'a' may not handle 'command:b:*'"),
    ("ghost", False, "event:ghost:*", PluginStateError, "plugin 'ghost' is not loaded"),
    # the host application: any address
    ("", True, "command:b:*", SERVES, ""),
    ("", True, "request:core:*", SERVES, ""),
    ("", True, "*", SERVES, ""),
])
def test_who_may_subscribe_to_what(core: Core, plugin: str, host: bool, pattern: str,
                                   outcome: Any, part: str) -> None:
    key = caller_key(PEER)
    answer = control(core, "subscribe", {**SUBSCRIPTION, "plugin": plugin, "host": host,
                                         "pattern": pattern, "sub_id": 7, "priority": 20})
    if outcome in (FOLLOWS, SERVES):
        assert answer.ok is True and answer.value is True
        assert core.router.callers[key] == PEER
        assert (key in core.router.followers) == (outcome == FOLLOWS)
        [route] = [r for r in core.router.table.routes(pattern.replace("*", "x"))
                   if r.owner == key]
        assert (route.sub_id, route.pattern, route.priority) == (7, pattern, 20)
    else:
        failed_with(answer, outcome, part)
        assert key not in core.router.callers and core.router.table.patterns_of(key) == []


def test_a_client_may_subscribe_only_to_events_says_so(core: Core) -> None:
    error = failed_with(control(core, "subscribe", {**SUBSCRIPTION, "pattern": "command:a:*"}),
                        ScopeError, "a client may subscribe to events only, not 'command:a:*'")
    assert error.context == {"pattern": "command:a:*"}


def test_a_followers_subscription_brings_it_the_events(core: Core) -> None:
    subscribed = control(core, "subscribe", {**SUBSCRIPTION, "sub_id": 4})
    assert subscribed.ok is True
    reached = Answer()
    core.router.route("a", Send(1, "event:a:done", "", 0.0, b"body"), reached)
    assert reached.value == 1
    [(to, call)] = core.outbox.to_clients
    assert to == PEER and isinstance(call, Call)
    assert (call.sub_id, call.address, call.source, call.body) == (4, "event:a:done", "a",
                                                                   b"body")


def test_the_default_priority_is_50(core: Core) -> None:
    control(core, "subscribe", {"plugin": "", "host": True, "pattern": "hook:build",
                                "sub_id": 1})
    control(core, "subscribe", {"plugin": "", "host": True, "pattern": "hook:build",
                                "sub_id": 2, "priority": -1})
    assert [(r.sub_id, r.priority) for r in core.router.table.routes("hook:build")] == [
        (2, -1), (1, 50)]


@pytest.mark.parametrize(("first", "then", "follower"), [
    ("", "", True),  # events only: it may be forgotten
    ("", "a", False),  # then a plugin's handler: it serves, kept
    ("a", "", False),  # serving first, then following too: still kept
    ("a", "a", False),
])
def test_a_connection_serving_any_handler_is_no_mere_follower(
        core: Core, first: str, then: str, follower: bool) -> None:
    for sub_id, plugin in enumerate((first, then)):
        pattern = "command:a:*" if plugin else "event:a:*"
        assert control(core, "subscribe", {"plugin": plugin, "pattern": pattern,
                                           "sub_id": sub_id}).ok
    assert (caller_key(PEER) in core.router.followers) is follower
    assert core.router.table.count(caller_key(PEER)) == 2


@pytest.mark.parametrize("args", [{}, {"sub_id": "1"}, {"sub_id": True}, {"sub_id": None}])
def test_unsubscribe_needs_a_sub_id(core: Core, args: dict[str, Any]) -> None:
    failed_with(control(core, "unsubscribe", args), ProtocolError, "unsubscribe needs sub_id")


def test_unsubscribe_removes_that_connections_handler_only(core: Core) -> None:
    for peer in (PEER, OTHER):
        for sub_id, pattern in ((1, "event:a:one"), (2, "event:a:two")):
            assert control(core, "subscribe", {**SUBSCRIPTION, "pattern": pattern,
                                               "sub_id": sub_id}, peer=peer).ok
    answer = control(core, "unsubscribe", {"sub_id": 1})
    assert answer.ok is True and answer.value is True
    assert core.router.table.patterns_of(caller_key(PEER)) == ["event:a:two"]
    assert core.router.table.patterns_of(caller_key(OTHER)) == ["event:a:one", "event:a:two"]
    assert control(core, "unsubscribe", {"sub_id": 99}).value is True  # unknown: nothing
    assert core.router.table.count(caller_key(PEER)) == 1
