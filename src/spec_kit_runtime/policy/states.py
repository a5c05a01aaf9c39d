"""The states a plugin can be in, as the supervisor keeps them (a slot's ``status``).

The first nine are the contracts' ``PluginStatus`` values, in their order, as a worker
reports them after a lifecycle phase; the last three are the supervisor's own, for a
plugin whose worker is gone. A ``StrEnum``: each member is its string, so it compares
equal to the text on the wire and in JSON (the codec sends it as a plain string only once
it is made one: ``str(state)`` or the status codec).
"""

from __future__ import annotations

from enum import StrEnum


class PluginState(StrEnum):
    UNLOADED = "unloaded"
    LOADING = "loading"  # also the supervisor's while it spawns a worker
    LOADED = "loaded"  # a worker's answer for a plugin without a status of its own
    INITIALIZING = "initializing"
    INITIALIZED = "initialized"
    ACTIVE = "active"
    DEACTIVATING = "deactivating"
    ERROR = "error"  # a start failed, or a crash during an operation
    DISABLED = "disabled"
    RESTARTING = "restarting"  # its worker ended; a restart is scheduled
    STOPPED = "stopped"  # stopped on purpose (``stop``); not restarted
    FAILED = "failed"  # its restarts gave up
