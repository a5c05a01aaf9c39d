"""The hardening layers a worker runs under by default, as the kernel reports them, in status
(each layer against a hostile plugin: test_confinement)."""

from __future__ import annotations

import os

import pytest

from conftest import (
    GOOD,
    PLUGINS,
    landlock_support,
    load_active,
    plugin_entry,
    running_container,
)
from spec_kit_runtime.linux.hardening import kernel_flags

pytestmark = pytest.mark.timeout(40)
NO_LANDLOCK = landlock_support()[1]


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_workers_run_without_new_privileges_and_status_says_so(start_method: str) -> None:
    with running_container(start_method=start_method) as container:
        load_active(container, GOOD, "design")  # sandboxed
        load_active(container, PLUGINS / "crash" / "crashy", "crashy")  # trusted
        for plugin_id, sandbox in (("design", True), ("crashy", False)):
            entry = plugin_entry(container, plugin_id)
            assert kernel_flags(entry["pid"])["no_new_privs"] is True
            assert entry["hardening"] == {
                "process": True, "sandbox": sandbox, "no_new_privs": True, "cgroups": False,
                "seccomp": False, "landlock": not NO_LANDLOCK, "own_network": True,
                "own_uid": False, "uid": os.getuid(),
                "reasons": {"own_uid": "no worker_user configured (hardening.worker_user)",
                            **({"landlock": NO_LANDLOCK} if NO_LANDLOCK else {})}}


def test_the_supervisor_itself_keeps_its_privileges() -> None:
    with running_container() as container:
        supervisor = container.status()["supervisor"]["pid"]
        assert kernel_flags(supervisor)["no_new_privs"] is False
