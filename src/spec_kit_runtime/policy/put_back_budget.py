"""How many bytes of call bodies the supervisor keeps to put calls back (pure).

A call sent to a plugin's worker is kept, body included, until it is answered. If the
worker dies before beginning the call, the call can wait for the replacement
(``Router.owner_gone``). Without a bound, a slow handler and a flood of large calls would
move the plugin's queue into the supervisor's memory, where no plugin limit applies. Before
this, the bodies left the supervisor once ZeroMQ took them. Within the budget a call is
kept; past it the call is not, and it fails with its worker's death, as every call used to.

The budget is per sender and plugin called, so that neither a plugin flooding another nor
a slow plugin holding its callers' calls uses up what keeps any other pair's calls: the
host (all clients, trusted) has more for each plugin it calls than a plugin has. A plugin
has a cap over all the plugins it calls too, so that no one plugin fills the total. The
total, over all pairs, bounds the memory whatever the number of plugins; past it nothing
more is kept (it takes many plugins flooding at once). The bytes count while the calls are
in flight; a call put back keeps its body while it waits for the replacement, and is
counted again once sent to it, so a pair, and the total, may hold up to twice as much while
restarts are under way.
"""

from __future__ import annotations

HOST_BYTES = 4 * 1024 * 1024  # the clients' calls to one plugin
PLUGIN_BYTES = 1024 * 1024  # one plugin's calls to another
SENDER_BYTES = 4 * 1024 * 1024  # one plugin's calls to all the others
TOTAL_BYTES = 64 * 1024 * 1024  # all calls kept

Pair = tuple[str | None, str]  # (sender, None: the host; the plugin called)


class PutBackBudget:
    """The bytes kept for each pair's calls, against its share, its plugin sender's cap and
    the total."""

    def __init__(self, host: int = HOST_BYTES, plugin: int = PLUGIN_BYTES,
                 sender: int = SENDER_BYTES, total: int = TOTAL_BYTES) -> None:
        self.host, self.plugin, self.sender, self.total = host, plugin, sender, total
        self._kept: dict[Pair, int] = {}
        self._senders: dict[str, int] = {}  # each plugin sender's bytes, over its pairs
        self._all = 0

    def take(self, pair: Pair, size: int) -> bool:
        """Keep ``size`` more bytes for ``pair`` if they fit its share, its sender's cap
        (a plugin's) and the total."""
        kept = self._kept.get(pair, 0) + size
        sender = pair[0]
        if kept > (self.host if sender is None else self.plugin) \
                or self._all + size > self.total \
                or (sender is not None and self._senders.get(sender, 0) + size > self.sender):
            return False
        self._kept[pair] = kept
        self._all += size
        if sender is not None:
            self._senders[sender] = self._senders.get(sender, 0) + size
        return True

    def give(self, pair: Pair, size: int) -> None:
        """``size`` bytes kept for ``pair`` are let go."""
        had = self._kept.pop(pair, 0)
        given = min(had, size)
        self._all -= given
        if had > size:
            self._kept[pair] = had - size
        sender = pair[0]
        if sender is not None and given:
            left = self._senders.pop(sender) - given
            if left:
                self._senders[sender] = left

    def kept(self, pair: Pair | None = None) -> int:
        """The bytes kept for ``pair`` now (None: for all)."""
        return self._all if pair is None else self._kept.get(pair, 0)
