"""Reading a YAML manifest strictly: a key given twice is an error, as in JSON manifests.

Apart from ``manifest`` so that PyYAML (10 ms to import) is loaded only where a YAML
manifest is read: JSON manifests, Spec-Kit's kind, never pay for it.
"""

from __future__ import annotations

from typing import Any

import yaml

from spec_kit_runtime.errors import ManifestError


class _StrictYamlLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, where: str) -> object:
    """The data of a YAML manifest; ManifestError saying where it is malformed."""
    try:
        return yaml.load(text, Loader=_StrictYamlLoader)  # a SafeLoader: no Python objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ManifestError(where, None, f"malformed YAML{at}: {exc.problem}") from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise ManifestError(where, None, f"malformed YAML: {exc}") from exc
