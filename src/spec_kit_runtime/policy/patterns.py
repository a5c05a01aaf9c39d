"""Message addresses and the patterns that match them (pure, no I/O).

An *address* is what a message is sent to, e.g. ``command:design:generate``. A *pattern*
is an address that may contain ``*`` wildcards, each matching any run of characters
(``:`` included), as in 1.0's ``fnmatch`` use. Unlike 1.0 we accept no other glob syntax
(``?``, ``[...]``): it made scope checks ambiguous, and without it "is pattern P inside
scope S" has an exact answer (``covers``).
"""

from __future__ import annotations

import re

MAX_ADDRESS_LENGTH = 256
_ADDRESS_CHARS = re.compile(r"[A-Za-z0-9_.:/@+-]+")
_PATTERN_CHARS = re.compile(r"[A-Za-z0-9_.:/@+*-]+")


def address_problem(address: object) -> str | None:
    """Why ``address`` is not a valid message address, or None when it is."""
    return _problem(address, _ADDRESS_CHARS, "letters, digits and _ . : / @ + -")


def pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` is not a valid pattern, or None when it is."""
    return _problem(pattern, _PATTERN_CHARS, "letters, digits, '*' and _ . : / @ + -")


def _problem(value: object, chars: re.Pattern[str], allowed: str) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ADDRESS_LENGTH:
        return f"is longer than {MAX_ADDRESS_LENGTH} characters"
    if not chars.fullmatch(value):
        return f"{value!r} may contain only {allowed}"
    return None


def matches(address: str, pattern: str) -> bool:
    """True when ``address`` is matched by ``pattern``.

    The pattern's literal runs between its ``*`` must appear in the address in order: the
    first at the start, the last at the end, each of the others at its leftmost place
    after the one before (leftmost is always right for ``*``-only patterns). Each run is
    found by ``str.find``, so even a plugin's worst pattern against the longest address
    costs microseconds, and nothing backtracks (a regex, or matching character by
    character in Python, let one plugin's subscriptions stall the supervisor).
    """
    if "*" not in pattern:
        return address == pattern
    first, *middle, last = pattern.split("*")
    if len(first) + len(last) > len(address) or not (
            address.startswith(first) and address.endswith(last)):
        return False
    position, end = len(first), len(address) - len(last)
    for run in middle:
        if run:
            found = address.find(run, position, end)
            if found < 0:
                return False
            position = found + len(run)
    return True


def covers(scope: str, pattern: str) -> bool:
    """True when every address ``pattern`` matches is also matched by ``scope``.

    A ``*`` in ``pattern`` can only be absorbed by a ``*`` in ``scope``; literal
    characters must meet identical literals. Dynamic programming over both strings.
    """
    if "*" not in pattern:
        return matches(pattern, scope)
    rows, cols = len(scope), len(pattern)
    # ok[i][j]: scope[i:] covers pattern[j:]
    ok = [[False] * (cols + 1) for _ in range(rows + 1)]
    ok[rows][cols] = True
    for i in range(rows - 1, -1, -1):
        for j in range(cols, -1, -1):
            if scope[i] == "*":
                ok[i][j] = ok[i + 1][j] or (j < cols and ok[i][j + 1])
            else:
                ok[i][j] = j < cols and pattern[j] == scope[i] and ok[i + 1][j + 1]
    return ok[0][0]
