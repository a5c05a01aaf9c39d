"""A timed-out call ends its handler: the caller gets DeadlineExceeded at the deadline, a
reply after it is dropped, and a worker still in that handler a grace period later is killed
and restarted, with the reason in status and events. Real workers, hostile handlers."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, copy_plugin, load_active, running_container
from spec_kit_runtime.errors import DeadlineExceeded

pytestmark = pytest.mark.timeout(60)
CRASHY = PLUGINS / "crash" / "crashy"
TIMEOUT = 0.3


def test_a_reply_at_the_deadline_is_dropped(tmp_path: Path) -> None:
    """The handler sleeps exactly its call's timeout: its reply cannot come before the
    deadline (the deadline is set before the call is sent, the sleep starts after it comes),
    so it must never be delivered, even when it is read in the turn its deadline comes."""
    copy_plugin(CRASHY, tmp_path, "punctual")
    with running_container(request_timeout=TIMEOUT) as container:
        load_active(container, tmp_path, "punctual")
        for _ in range(8):
            with pytest.raises(DeadlineExceeded) as caught:
                container.send_message("punctual", Command(
                    command_name="punctual:sleep", options={"seconds": TIMEOUT}))
            assert caught.value.plugin == "punctual"
            assert "'command:punctual:sleep'" in str(caught.value)
            assert f"within {TIMEOUT:g}s" in str(caught.value)
