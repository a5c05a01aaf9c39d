"""Which of a plugin's requested patterns it gets: the operator grants, the plugin asks
(pure, no I/O).

A manifest's ``allowed_messages`` is written by the plugin's author, so it is a request,
not a power. The rule, pattern by pattern:

1. inside the plugin's 1.0 default scope (``scopes.default_patterns``): granted, it adds
   nothing;
2. only events (its text starts ``event:``): granted. Subscribing to other plugins'
   events is what 1.0 manifests list most, and it gives no power to act: a plugin emits
   in its own namespace only (``namespaces``), whatever its scope;
3. anything else (another plugin's ``command:`` or ``request:`` namespace, ``*``,
   ``command:*``, ``request:*``, other kinds): granted only when a pattern the operator
   granted this plugin (``plugins.ID.grant`` in the runtime config) covers it.

What is not granted is left out of the scope and reported; the plugin runs without it.
A grant the plugin did not ask for adds nothing: the operator allows, the plugin asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .patterns import covers
from .scopes import default_patterns


@dataclass(frozen=True)
class Grants:
    """The outcome for one plugin: requested patterns granted, and refused."""

    granted: tuple[str, ...]
    refused: tuple[str, ...]


def decide(plugin_id: str, requested: Iterable[str], operator: Iterable[str]) -> Grants:
    """Split ``requested`` (a manifest's allowed_messages) by the rule above."""
    defaults = default_patterns(plugin_id)
    allowed = tuple(operator)
    granted: list[str] = []
    refused: list[str] = []
    for pattern in dict.fromkeys(requested):
        ok = (any(covers(scope, pattern) for scope in defaults)
              or pattern.startswith("event:")
              or any(covers(grant, pattern) for grant in allowed))
        (granted if ok else refused).append(pattern)
    return Grants(tuple(granted), tuple(refused))
