"""Python validator: answers `validator:python` with a list of findings.

Trusted (``"sandbox": false``) because it uses the ``ast`` module; it still runs in its
own worker process, so a crash here costs only this plugin.
"""

import ast
from typing import Any, Dict, List, Optional

from spec_kit_contracts import IPluginMetadata, PluginBase, PluginCapability


class PythonValidator(PluginBase):
    """Checks Python source text without running it."""

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(
            name="pyvalidator", version="1.0.0", author="Spec-Kit Team",
            description="Python source validator", capabilities=[PluginCapability.VALIDATOR],
        )

    def get_config_schema(self) -> Dict[str, Any]:
        return {"type": "object", "properties": {"max_line_length": {"type": "integer"}}}

    def register_services(self, registry: Any) -> None:
        registry.register_validator("python", self.validate)

    def handle_message(self, message: Any) -> Optional[Dict[str, Any]]:
        return None

    def validate(self, request: Any) -> Dict[str, Any]:
        """params: {"source": "..."} → {"valid": bool, "findings": [...]}."""
        source = str(request.params.get("source", ""))
        findings = self._long_lines(source)
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            findings.append({"line": exc.lineno, "rule": "syntax", "message": exc.msg})
            return {"valid": False, "findings": findings}
        findings += self._tree_findings(tree)
        return {"valid": not findings, "findings": sorted(findings, key=lambda f: f["line"])}

    def _long_lines(self, source: str) -> List[Dict[str, Any]]:
        limit = int(self._config.get("max_line_length", 100))
        return [{"line": number, "rule": "line-length", "message": f"longer than {limit}"}
                for number, line in enumerate(source.splitlines(), 1) if len(line) > limit]

    def _tree_findings(self, tree: ast.AST) -> List[Dict[str, Any]]:
        findings = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is None:
                findings.append({"line": node.lineno, "rule": "bare-except",
                                 "message": "bare 'except:' hides errors"})
            if (isinstance(node, (ast.FunctionDef, ast.ClassDef))
                    and not node.name.startswith("_") and ast.get_docstring(node) is None):
                findings.append({"line": node.lineno, "rule": "docstring",
                                 "message": f"public {node.name!r} has no docstring"})
        return findings
