"""A spare's rehearsal (``birth.rehearsal``): it loads our own plugin the way its worker
will load the real one, and leaves nothing of it behind."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
from spec_kit_contracts import Command

from conftest import PLUGINS, copy_plugin, load_active, plugin_entry, running_container
from spec_kit_worker.birth.rehearsal import PLUGIN, PLUGIN_ID, rehearse
from spec_kit_worker.loop.loader import module_name
from test_spare_worker import CRASHY, the_spare

pytestmark = pytest.mark.timeout(60)


def rehearsal_classes() -> list[type]:
    gc.collect()
    return [obj for obj in gc.get_objects()
            if isinstance(obj, type) and obj.__name__ == "RehearsalPlugin"]


def test_a_rehearsal_leaves_no_module_path_or_class() -> None:
    path = list(sys.path)
    rehearse()
    assert sys.path == path
    assert module_name(PLUGIN_ID) not in sys.modules
    assert rehearsal_classes() == []


def test_the_rehearsal_plugin_is_a_plugin_file_alone() -> None:
    """Its folder has no ``__init__`` (the loader takes it as one file, as most plugins
    are) and nothing else: the loader puts that folder on ``sys.path`` for a moment."""
    assert [entry.name for entry in PLUGIN.parent.iterdir()
            if entry.name != "__pycache__"] == [PLUGIN.name]


def test_a_worker_that_was_a_rehearsed_spare_finds_no_trace_of_the_rehearsal(
        tmp_path: Path) -> None:
    copy_plugin(CRASHY, tmp_path, "first")
    copy_plugin(PLUGINS / "rehearsal" / "witness", tmp_path, "witness")
    with running_container() as container:
        load_active(container, tmp_path, "first")
        spare = the_spare(container)  # rehearsed: it waits only once it has
        load_active(container, tmp_path, "witness")
        assert plugin_entry(container, "witness")["pid"] == spare
        traces = container.send_message("witness", Command(command_name="witness:traces"))
    assert traces == {"pid": spare, "modules": [], "path": [], "classes": []}
