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

    Greedy two-pointer matching: on a mismatch, retry from the last ``*`` one character
    further. At most len(address) * len(pattern) steps, whatever the pattern: a plugin's
    subscription cannot make routing backtrack exponentially (a regex would).
    """
    if "*" not in pattern:
        return address == pattern
    a = p = 0
    star = resume = -1
    while a < len(address):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, a
            p += 1
        elif p < len(pattern) and pattern[p] == address[a]:
            a += 1
            p += 1
        elif star >= 0:
            resume += 1
            a, p = resume, star + 1
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


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
