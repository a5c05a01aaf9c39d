"""``PluginInfo``: the record of a validated plugin, what to run and the manifest it came from.

Apart from the manifest readers because the supervisor, the client and discovery pass it
around without reading a manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plain_data import Budget, plain


@dataclass(frozen=True)
class PluginInfo:
    """A validated plugin: what to run, and the manifest it came from.

    ``manifest`` is the validated data with every default made explicit, so that
    ``to_manifest`` can rebuild an equal info in another process.
    """

    id: str
    name: str
    version: str
    path: Path
    entry_point: str
    manifest: Mapping[str, Any] = field(hash=False)
    process_isolated: bool = False
    sandbox_enabled: bool = True
    dependencies: tuple[str, ...] = ()  # plugin ids only: started first, stopped last
    allowed_messages: tuple[str, ...] = ()
    manifest_path: Path | None = None
    start_method: str | None = None  # fork or spawn; None: the runtime's start_method
    network: bool = False  # asks for network: no network namespace, TCP allowed
    # PEP 508 package requirements from ``dependencies``, as written; checked at load
    requirements: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        """The plugin folder: where its manifest lives (or its file, lacking one)."""
        return (self.manifest_path or self.path).parent

    def to_manifest(self) -> dict[str, Any]:
        """Manifest data that ``parse_manifest_data(data, manifest_path, root)`` turns back
        into an equal info; used to hand an info to another process, which re-validates it.

        A deep copy of plain data (JSON/msgpack-safe). Raises ValueError only for a
        hand-built info whose ``manifest`` holds something else.
        """
        data = plain(dict(self.manifest), "", Budget())
        assert isinstance(data, dict)
        data.update(
            id=self.id,
            name=self.name,
            version=self.version,
            entry_point=self.entry_point,
            file=data.get("file", self.path.relative_to(self.root.resolve()).as_posix()),
            sandbox=self.sandbox_enabled,
            process_isolated=self.process_isolated,
            allowed_messages=list(self.allowed_messages),
            dependencies=[*self.dependencies, *self.requirements],
        )
        return data
