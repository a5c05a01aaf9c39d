"""A spare's rehearsal: while it idles, the spare loads a plugin of ours the way its worker
will load the real one, then forgets it.

Why: a freshly forked child pays a copy-on-write fault for every page of the fork server's
that it writes, reference counts and the allocator's pools included. Loading a plugin and
reading its facts writes about 1.3 MiB of such pages, about 1.3 ms of a restart's path here;
rehearsed, the real load finds most of them the spare's own already (``bench/RESULTS.md``,
Restart). The cost is memory: an idle spare's USS is about 2.9 MiB instead of 1.2, and a
worker that was the spare ends up about 0.15 MiB larger than one forked directly: what the
rehearsal dirtied that its own start would not have.

Nothing of the rehearsal stays visible to the plugin: its module and the ``sys.path`` entry
the loader adds are taken back, and its class and instance collected.
No plugin code but the file in ``rehearsal/`` (ours; a folder without ``__init__``, so the
loader takes it as a single file, as most plugins are) runs in the spare.
"""

import gc
import sys
from pathlib import Path

from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.plugins.facts import facts_of
from spec_kit_worker.loop.loader import load_plugin_class, module_name

PLUGIN = Path(__file__).resolve().parent / "rehearsal" / "rehearsal_plugin.py"
PLUGIN_ID = "rehearsal"


def rehearse() -> None:
    """Load, instantiate and read the facts of the rehearsal plugin, then undo it all (but
    the modules of the contracts it imported, as every plugin's worker does)."""
    path = list(sys.path)
    try:
        facts_of(load_plugin_class(PLUGIN_ID, PLUGIN, "RehearsalPlugin", False)())
    finally:
        sys.path[:] = path
        sys.modules.pop(module_name(PLUGIN_ID), None)
        gc.collect()
    mark("rehearsed")
