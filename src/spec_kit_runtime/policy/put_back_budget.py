"""How many bytes of call bodies the supervisor keeps per plugin to put calls back (pure).

A call sent to a plugin's worker is kept, body included, until it is answered. If the
worker dies before beginning the call, the call can wait for the replacement
(``Router.owner_gone``). Without a bound, a slow handler and a flood of large calls would
move the plugin's queue into the supervisor's memory, where no plugin limit applies. Before
this, the bodies left the supervisor once ZeroMQ took them. Within the budget a call is
kept; past it the call is not, and it fails with its worker's death, as every call used to.
"""

from __future__ import annotations

PUT_BACK_BYTES = 4 * 1024 * 1024  # per plugin: thousands of typical calls


class PutBackBudget:
    """The bytes kept for each plugin's calls, against one limit per plugin."""

    def __init__(self, limit: int = PUT_BACK_BYTES) -> None:
        self.limit = limit
        self._kept: dict[str, int] = {}

    def take(self, owner: str, size: int) -> bool:
        """Keep ``size`` more bytes for ``owner`` if they fit its budget."""
        kept = self._kept.get(owner, 0) + size
        if kept > self.limit:
            return False
        self._kept[owner] = kept
        return True

    def give(self, owner: str, size: int) -> None:
        """``size`` bytes kept for ``owner`` are let go."""
        kept = self._kept.get(owner, 0) - size
        if kept > 0:
            self._kept[owner] = kept
        else:
            self._kept.pop(owner, None)

    def kept(self, owner: str) -> int:
        """The bytes kept for ``owner`` now."""
        return self._kept.get(owner, 0)
