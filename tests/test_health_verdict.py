"""The health verdict by table: plugin states → healthy / degraded / unhealthy, and ready."""

import pytest

from spec_kit_runtime.policy.health import DEGRADED, HEALTHY, UNHEALTHY, PluginCondition, assess

ACTIVE = PluginCondition("a", "active", "active")


@pytest.mark.parametrize(("plugins", "starting", "not_started", "verdict"), [
    ([], [], {}, (HEALTHY, True, [])),
    ([ACTIVE], [], {}, (HEALTHY, True, [])),
    ([PluginCondition("b", "initialized", "initialized")], [], {}, (HEALTHY, True, [])),
    ([PluginCondition("b", "stopped", None)], [], {}, (HEALTHY, True, [])),  # stopped on purpose
    ([ACTIVE], ["b"], {}, (DEGRADED, False, ["b: starting"])),
    ([PluginCondition("b", "restarting", "active", last_exit="killed by SIGKILL")], [], {},
     (DEGRADED, False, ["b: restarting (last exit: killed by SIGKILL)"])),
    ([PluginCondition("b", "active", "active", restarts=1, uptime=3.2, stable_after=30.0,
                  last_exit="exited with code 3")], [], {},
     (DEGRADED, True, ["b: restarted 3s ago (last exit: exited with code 3)"])),
    ([PluginCondition("b", "active", "active", restarts=1, uptime=31.0)], [], {},
     (HEALTHY, True, [])),  # stable again
    ([PluginCondition("b", "failed", "active", last_error="gave up")], [], {},
     (UNHEALTHY, False, ["b: failed (gave up)"])),
    ([PluginCondition("b", "error", None, last_error="ImportError")], [], {},
     (UNHEALTHY, False, ["b: did not start (ImportError)"])),
    ([ACTIVE], [], {"c": "needs 'd', which is not there"},
     (UNHEALTHY, False, ["c: not started (needs 'd', which is not there)"])),
    ([PluginCondition("b", "error", "active", last_exit="killed by SIGSEGV")], [], {},
     (UNHEALTHY, False, ["b: crashed, not restarted (last exit: killed by SIGSEGV)"])),
    ([PluginCondition("b", "error", "active", recovering=True)], [], {},
     (DEGRADED, False, ["b: error"])),  # an operation is under way
    ([PluginCondition("b", "unloaded", "active", last_exit="exited with code 0")], [], {},
     (DEGRADED, False, ["b: unloaded (last exit: exited with code 0)"])),  # transient, done
    ([PluginCondition("b", "failed", "active", last_error="x"),
      PluginCondition("c", "restarting", "active")], [], {},
     (UNHEALTHY, False, ["b: failed (x)", "c: restarting"])),  # the worst wins, all listed
])
def test_verdict(plugins: list[PluginCondition], starting: list[str], not_started: dict[str, str],
                 verdict: tuple[str, bool, list[str]]) -> None:
    health = assess(plugins, starting, not_started)
    assert (health.status, health.ready, list(health.reasons)) == verdict
    assert health.live
