"""Plugin dependency order (pure): dependencies start first and stop last.

Plugins caught in a cycle, or needing a plugin that is not there, are refused with the
reason; so are plugins that depend on a refused one. Order among independent plugins is
by id, so it is the same on every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DependencyOrder:
    """Start-up order, and the plugins refused with why."""

    order: tuple[str, ...]
    refused: dict[str, str]


def dependency_order(dependencies: Mapping[str, Sequence[str]]) -> DependencyOrder:
    """Order ``{plugin: [its dependencies]}`` so that each plugin follows its dependencies."""
    refused: dict[str, str] = {}
    for plugin, needs in dependencies.items():
        missing = sorted(set(needs) - set(dependencies))
        if missing:
            refused[plugin] = f"needs {', '.join(repr(m) for m in missing)}, which is not there"
    order: list[str] = []
    state: dict[str, str] = {}  # visiting / done

    def visit(plugin: str, path: list[str]) -> None:
        if state.get(plugin) == "done":
            return
        if state.get(plugin) == "visiting":
            cycle = [*path[path.index(plugin):], plugin]
            for member in cycle[:-1]:
                refused.setdefault(member, f"dependency cycle {' -> '.join(cycle)}")
            return
        state[plugin] = "visiting"
        for need in sorted(dependencies.get(plugin, ())):
            if need in dependencies:
                visit(need, [*path, plugin])
        state[plugin] = "done"
        order.append(plugin)

    for plugin in sorted(dependencies):
        visit(plugin, [])
    changed = True
    while changed:  # a plugin that needs a refused plugin is refused too
        changed = False
        for plugin in order:
            bad = [n for n in dependencies[plugin] if n in refused]
            if plugin not in refused and bad:
                refused[plugin] = f"needs {bad[0]!r}, which was refused"
                changed = True
    return DependencyOrder(tuple(p for p in order if p not in refused), refused)


def dependents_of(plugin: str, dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """Every plugin that depends on ``plugin``, directly or not, in start-up order."""
    order = dependency_order(dependencies).order
    affected = {plugin}
    found = []
    for candidate in order:
        if candidate != plugin and affected & set(dependencies.get(candidate, ())):
            affected.add(candidate)
            found.append(candidate)
    return found


def may_stop(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """The plugins of ``dependencies`` (those still running) that may stop now: nobody among
    them depends on them (dependents stop before their dependencies; plugins without that
    tie stop together). A dependency that is not there holds up nobody; when every plugin
    left is needed by another, those caught in a dependency cycle may stop (there is no
    order to keep among them), the plugins they need after them."""
    needed = {need for needs in dependencies.values() for need in needs
              if need in dependencies}
    ready = [plugin for plugin in sorted(dependencies) if plugin not in needed]
    return ready or sorted(_in_cycles(dependencies))


def _in_cycles(dependencies: Mapping[str, Sequence[str]]) -> set[str]:
    """The plugins that depend on themselves, through others or not."""
    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [need for need in dependencies[start] if need in dependencies]
        while todo:
            plugin = todo.pop()
            if plugin not in seen:
                seen.add(plugin)
                todo.extend(need for need in dependencies[plugin] if need in dependencies)
        return seen

    return {plugin for plugin in dependencies if plugin in reaches(plugin)}
