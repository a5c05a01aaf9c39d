"""Orderly stop escalates: Stop, then SIGTERM, then SIGKILL, to the worker's whole tree."""

from __future__ import annotations

import time

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, all_gone, pid_alive, running_container

pytestmark = pytest.mark.timeout(30)
STUBBORN = PLUGINS / "crash" / "stubborn"


@pytest.mark.parametrize("hang", [False, True])
def test_stop_reaches_children_that_ignore_sigterm(hang: bool) -> None:
    with running_container(stop_timeout=0.3, phase_timeout=5.0) as container:
        container.discover_plugins([STUBBORN.parent])
        info = container.discovered_plugins["stubborn"]
        container.load_plugin(info, config={"hang_in_shutdown": hang})
        container.activate_plugin("stubborn")
        family = container.send_message("stubborn",
                                        Command(command_name="stubborn:family"))
        assert len(set(family)) == 3 and all(pid_alive(pid) for pid in family)
        started = time.monotonic()
        container.unload_plugin("stubborn")  # with hang: shutdown never returns
        took = time.monotonic() - started
        all_gone(set(family), timeout=1.0, what="the plugin's worker, child and grandchild")
        assert container.status()["plugins"] == []
        if hang:  # the stop's 0.3 s spent in shutdown; SIGTERM (ignored), SIGKILL 0.3 s later
            assert 0.55 <= took < 2 * 0.3 + 1.5  # never phase_timeout
        else:  # the worker exits on Stop; its group, SIGTERM-proof children too, is SIGKILLed
            assert took < 1.0
