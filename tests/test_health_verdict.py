"""The health verdict by table: plugin states → healthy / degraded / unhealthy, and ready."""

import pytest

from spec_kit_runtime.policy.health import DEGRADED, HEALTHY, UNHEALTHY, PluginState, assess

ACTIVE = PluginState("a", "active", "active")


@pytest.mark.parametrize(("plugins", "starting", "not_started", "verdict"), [
    ([], [], {}, (HEALTHY, True, [])),
    ([ACTIVE], [], {}, (HEALTHY, True, [])),
    ([PluginState("b", "initialized", "initialized")], [], {}, (HEALTHY, True, [])),
    ([PluginState("b", "stopped", None)], [], {}, (HEALTHY, True, [])),  # stopped on purpose
    ([ACTIVE], ["b"], {}, (DEGRADED, False, ["b: starting"])),
    ([PluginState("b", "restarting", "active", last_exit="killed by SIGKILL")], [], {},
     (DEGRADED, False, ["b: restarting (last exit: killed by SIGKILL)"])),
    ([PluginState("b", "active", "active", restarts=1, uptime=3.2, stable_after=30.0,
                  last_exit="exited with code 3")], [], {},
     (DEGRADED, True, ["b: restarted 3s ago (last exit: exited with code 3)"])),
    ([PluginState("b", "active", "active", restarts=1, uptime=31.0)], [], {},
     (HEALTHY, True, [])),  # stable again
    ([PluginState("b", "failed", "active", last_error="gave up")], [], {},
     (UNHEALTHY, False, ["b: failed (gave up)"])),
    ([PluginState("b", "error", None, last_error="ImportError")], [], {},
     (UNHEALTHY, False, ["b: did not start (ImportError)"])),
    ([ACTIVE], [], {"c": "needs 'd', which is not there"},
     (UNHEALTHY, False, ["c: not started (needs 'd', which is not there)"])),
    ([PluginState("b", "error", "active", last_exit="killed by SIGSEGV")], [], {},
     (UNHEALTHY, False, ["b: crashed, not restarted (last exit: killed by SIGSEGV)"])),
    ([PluginState("b", "error", "active", recovering=True)], [], {},
     (DEGRADED, False, ["b: error"])),  # an operation is under way
    ([PluginState("b", "unloaded", "active", last_exit="exited with code 0")], [], {},
     (DEGRADED, False, ["b: unloaded (last exit: exited with code 0)"])),  # transient, done
    ([PluginState("b", "failed", "active", last_error="x"),
      PluginState("c", "restarting", "active")], [], {},
     (UNHEALTHY, False, ["b: failed (x)", "c: restarting"])),  # the worst wins, all listed
])
def test_verdict(plugins: list[PluginState], starting: list[str], not_started: dict[str, str],
                 verdict: tuple[str, bool, list[str]]) -> None:
    health = assess(plugins, starting, not_started)
    assert (health.status, health.ready, list(health.reasons)) == verdict
    assert health.live
