"""A spare's rehearsal: while it idles, the spare runs a plugin of ours through the steps
its worker will take with the real one on a restart, then forgets it.

Why: a freshly forked child pays a copy-on-write fault for every page of the fork server's
that it writes, reference counts and the allocator's pools included. A worker's start
writes megabytes of such pages: loading its plugin (its code from the cache, as on a
restart: read, hashed, unmarshalled), reading its facts, initializing and activating it,
registering its handlers. Rehearsed, the real steps find most of those pages the spare's
own already: about 2 ms less on a restart's path here (``bench/RESULTS.md``, Restart). The
cost is memory: an idle spare's USS is about 3 MiB instead of 1.2, and a worker that was
the spare ends up about 0.15 MiB larger than one forked directly, what the rehearsal
dirtied that its own start would not have.

Nothing of the rehearsal stays visible to the plugin: its module and the ``sys.path`` entry
the loader adds are taken back, its class, instance, registry and memfd let go and
collected. No plugin code but the file in ``rehearsal/`` (ours; a folder without
``__init__``, so the loader takes it as a single file, as most plugins are) runs in the
spare, and what it registers goes nowhere.
"""

import gc
import marshal
import sys
from pathlib import Path

from spec_kit_runtime.logs.timeline import mark
from spec_kit_runtime.plugins.facts import facts_of
from spec_kit_runtime.policy.scopes import Scope
from spec_kit_worker.loop import code_memfd
from spec_kit_worker.loop.code_cache import digest_of
from spec_kit_worker.loop.loader import load_plugin_class, module_name
from spec_kit_worker.loop.registry import WorkerRegistry

PLUGIN = Path(__file__).resolve().parent / "rehearsal" / "rehearsal_plugin.py"
PLUGIN_ID = "rehearsal"


def rehearse() -> None:
    """Load the rehearsal plugin from cached code, read its facts, initialize and activate
    it with a registry that announces nothing, then undo it all (but the modules of the
    contracts it imported, as every plugin's worker does)."""
    path = list(sys.path)
    try:
        source = PLUGIN.read_bytes()
        code = compile(source, str(PLUGIN), "exec", dont_inherit=True)
        cached = code_memfd.write(digest_of(source), marshal.dumps(code))  # closed by the load
        plugin = load_plugin_class(PLUGIN_ID, PLUGIN, "RehearsalPlugin", False,
                                   cached=cached)()
        facts_of(plugin)
        plugin.initialize({})
        plugin.activate()
        registry = WorkerRegistry(Scope(PLUGIN_ID, ()), lambda handler: None, lambda sub: None)
        plugin.register_services(registry)
        registry.clear()
    finally:
        sys.path[:] = path
        sys.modules.pop(module_name(PLUGIN_ID), None)
        gc.collect()
    mark("rehearsed")
