"""The rooms of the house and what each may import (docs/ARCHITECTURE.md), read from the code.

A room is a folder of ``spec_kit_runtime`` (or the worker package); an import of another
room that its row does not list fails here with the file and the line, so the folder tree
stays the architecture as the code changes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"spec_kit_runtime": ROOT / "src" / "spec_kit_runtime",
            "spec_kit_worker": ROOT / "workers" / "spec_kit_worker"}

# room -> the rooms it may import (besides itself). "worker" is the whole worker package.
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "logs": set(),
    "policy": {"errors"},
    "wire": {"errors", "policy"},
    "plugins": {"errors", "logs", "policy", "wire"},
    "linux": {"errors", "policy", "wire"},
    "sandbox": {"errors", "plugins"},
    "inprocess": {"errors", "policy", "wire"},
    "client": {"errors", "policy", "wire", "plugins", "linux", "inprocess"},
    "supervisor": {"errors", "logs", "policy", "wire", "plugins", "linux", "version"},
    "worker": {"errors", "logs", "policy", "wire", "plugins", "linux", "sandbox"},
    "cli": {"errors", "logs", "policy", "wire", "plugins", "client", "supervisor", "version"},
    "top": {"errors", "version", "client", "plugins", "inprocess", "sandbox", "cli"},
}
# The one door between rooms that the table does not open: the HTTP endpoints run in the
# supervisor's process but are a client of its control socket by design, so that a slow
# scraper cannot stall the loop.
EXCEPTIONS = {("spec_kit_runtime.supervisor.ops.http_endpoints", "spec_kit_runtime.client.client")}


def room_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "spec_kit_worker":
        return "worker"
    if len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return "top"
    return "version" if parts[1] == "_version" else parts[1]


def modules() -> list[tuple[str, Path]]:
    found = []
    for name, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            found.append((".".join(parts), path))
    return found


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    """Every module of ours that ``path`` imports, with the line (``from X import y`` counts
    as ``X.y`` when ``y`` is a module)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                whole = f"{target}.{alias.name}"
                top = whole.split(".")[0]
                as_module = top in PACKAGES and _exists(whole)
                found.append((whole if as_module else target, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] in PACKAGES]


def _exists(module: str) -> bool:
    top, *rest = module.split(".")
    place = PACKAGES[top].joinpath(*rest)
    return place.with_suffix(".py").exists() or (place / "__init__.py").exists()


def test_every_room_imports_only_what_its_row_allows() -> None:
    wrong = []
    for module, path in modules():
        mine = room_of(module)
        for target, line in imports_of(module, path):
            theirs = room_of(target)
            if theirs == mine or theirs in MAY_IMPORT[mine] or (module, target) in EXCEPTIONS:
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_every_room_has_a_row_and_a_docstring() -> None:
    rooms = {room_of(module) for module, _ in modules()}
    assert rooms <= set(MAY_IMPORT) | {"version"}
    for folder in PACKAGES.values():
        for init in folder.rglob("__init__.py"):
            assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says nothing"


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: str(v)[-60:])
def test_every_module_says_what_it_is_for(module: str, path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{module} has no docstring"


def test_the_table_catches_a_wrong_import(tmp_path: Path) -> None:
    """The check itself can fail: a policy module importing the supervisor is reported."""
    path = tmp_path / "bad.py"
    path.write_text('"""x"""\nfrom spec_kit_runtime.supervisor.loop import Supervisor\n')
    (target, _line), = imports_of("spec_kit_runtime.policy.bad", path)
    assert room_of(target) == "supervisor" not in MAY_IMPORT["policy"]
