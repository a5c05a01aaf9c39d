"""Owned namespaces: only plugin X handles ``command:X:*`` and ``request:X:*``, and only X
emits ``event:X:*`` (pure, no I/O).

Scopes say what a plugin may ask for; ownership says what nobody else may take, whatever
a scope says. Without it, a plugin granted ``command:*`` (or asking for another plugin's
namespace) could register a handler for ``command:OTHER:shutdown`` and answer in the
owner's place, or emit events in another plugin's name. The shared kinds
(``generator:``, ``validator:``, ``hook:``) belong to nobody: any plugin in scope
handles them, by priority. ``event:system:*`` is the supervisor's alone, and
``request:core:*`` the host application's (plugins send there, never handle it).
"""

from __future__ import annotations

from .patterns import covers

OWNED_KINDS = ("command", "request")  # handled by their namespace's owner only
EVENT = "event"


def owner_of(address: str) -> str | None:
    """The namespace an address lies in (``command:design:x`` → ``design``), for the
    owned kinds and events; None for the shared kinds and anything else."""
    kind, _, rest = address.partition(":")
    if kind not in (*OWNED_KINDS, EVENT) or not rest:
        return None
    return rest.partition(":")[0]


def _own(plugin_id: str, kind: str) -> tuple[str, str]:
    return f"{kind}:{plugin_id}", f"{kind}:{plugin_id}:*"


def _inside_own(plugin_id: str, kind: str, pattern: str) -> bool:
    exact, namespace = _own(plugin_id, kind)
    return pattern == exact or covers(namespace, pattern)


def handling_problem(plugin_id: str, pattern: str) -> str | None:
    """Why plugin ``plugin_id`` may not handle ``pattern`` whatever its scope, or None.

    A pattern that could match a command or request of another namespace is refused.
    Where its text fixes the kind (``command:...``) it must lie in the plugin's own
    namespace; where a leading ``*`` leaves the kind open (``*``, ``c*``, ``*:x``) it could
    reach every namespace, so it is refused unless it lies in the plugin's own.
    """
    literal, wild, _ = pattern.partition("*")
    for kind in OWNED_KINDS:
        prefix = f"{kind}:"
        could_match = literal.startswith(prefix) or (bool(wild) and prefix.startswith(literal))
        if could_match and not _inside_own(plugin_id, kind, pattern):
            owner = owner_of(pattern) if pattern.startswith(prefix) else None
            return (f"plugin '{plugin_id}' may not handle '{pattern}': {kind}s there "
                    f"belong to {_whose(owner)} (a plugin handles {kind}:{plugin_id}:* only)")
    return None


def _whose(owner: str | None) -> str:
    if owner is None or "*" in owner:
        return "other plugins"
    return {"system": "the supervisor", "core": "the host application"}.get(
        owner, f"plugin '{owner}'")


def emitting_problem(plugin_id: str, address: str) -> str | None:
    """Why plugin ``plugin_id`` may not send ``address`` whatever its scope, or None: an
    event is emitted by its namespace's owner only (``event:system:*``: the supervisor)."""
    if not address.startswith(f"{EVENT}:"):
        return None
    if _inside_own(plugin_id, EVENT, address):
        return None
    return (f"plugin '{plugin_id}' may not emit '{address}': events there belong to "
            f"{_whose(owner_of(address))} (a plugin emits event:{plugin_id}:* only)")
