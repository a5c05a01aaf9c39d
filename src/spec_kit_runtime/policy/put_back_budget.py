"""How many bytes of call bodies the supervisor keeps per sender to put calls back (pure).

A call sent to a plugin's worker is kept, body included, until it is answered. If the
worker dies before beginning the call, the call can wait for the replacement
(``Router.owner_gone``). Without a bound, a slow handler and a flood of large calls would
move the plugin's queue into the supervisor's memory, where no plugin limit applies. Before
this, the bodies left the supervisor once ZeroMQ took them. Within the budget a call is
kept; past it the call is not, and it fails with its worker's death, as every call used to.

The budget is the sender's, across all the plugins it calls: a plugin that floods another
with large calls uses up its own budget only, never that of the other callers of the same
plugin. The host (all clients, trusted) has one of its own, larger. So the supervisor
keeps at most ``host + plugin * senders`` bytes.
"""

from __future__ import annotations

HOST_BYTES = 4 * 1024 * 1024  # the clients' calls, together
PLUGIN_BYTES = 1024 * 1024  # each plugin's calls to others


class PutBackBudget:
    """The bytes kept for each sender's calls (None: the host's), against its limit."""

    def __init__(self, host: int = HOST_BYTES, plugin: int = PLUGIN_BYTES) -> None:
        self.host, self.plugin = host, plugin
        self._kept: dict[str | None, int] = {}

    def take(self, sender: str | None, size: int) -> bool:
        """Keep ``size`` more bytes for ``sender`` if they fit its budget."""
        kept = self._kept.get(sender, 0) + size
        if kept > (self.host if sender is None else self.plugin):
            return False
        self._kept[sender] = kept
        return True

    def give(self, sender: str | None, size: int) -> None:
        """``size`` bytes kept for ``sender`` are let go."""
        kept = self._kept.get(sender, 0) - size
        if kept > 0:
            self._kept[sender] = kept
        else:
            self._kept.pop(sender, None)

    def kept(self, sender: str | None) -> int:
        """The bytes kept for ``sender`` now."""
        return self._kept.get(sender, 0)
