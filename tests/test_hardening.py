"""The hardening layers a worker runs under, as the kernel reports them, in status."""

from __future__ import annotations

import pytest

from conftest import GOOD, PLUGINS, load_active, plugin_entry, running_container
from spec_kit_runtime.hardening import kernel_flags

pytestmark = pytest.mark.timeout(40)


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
                "seccomp": False, "landlock": False, "own_network": False}


def test_the_supervisor_itself_keeps_its_privileges() -> None:
    with running_container() as container:
        supervisor = container.status()["supervisor"]["pid"]
        assert kernel_flags(supervisor)["no_new_privs"] is False
