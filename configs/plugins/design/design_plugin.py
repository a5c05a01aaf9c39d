"""Design-document generator: a command and a generator, announcing what it made."""

from typing import Any, Dict, List, Optional

from spec_kit_contracts import IPluginMetadata, PluginBase, PluginCapability


class DesignPlugin(PluginBase):
    """Writes a high-level design skeleton in Markdown."""

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(
            name="design", version="1.2.0", author="Spec-Kit Team",
            description="Design-document generator",
            capabilities=[PluginCapability.COMMAND, PluginCapability.GENERATOR],
        )

    def get_config_schema(self) -> Dict[str, Any]:
        return {"type": "object", "properties": {"author": {"type": "string"}}}

    def register_services(self, registry: Any) -> None:
        self.bus = registry.bus
        registry.register_command("design:generate", self.generate_command)
        registry.register_generator("hld", self.generate_hld)

    def handle_message(self, message: Any) -> Optional[Dict[str, Any]]:
        return {"error": "unknown design action", "payload": message.payload}

    def generate_command(self, arguments: List[str], options: Dict[str, Any]) -> Dict[str, Any]:
        """`command:design:generate`: arguments form the title, options.components the parts."""
        title = " ".join(arguments) or "Untitled"
        return self._document(title, list(options.get("components", [])))

    def generate_hld(self, request: Any) -> Dict[str, Any]:
        """`generator:hld`: params {title, components}."""
        params = request.params
        return self._document(str(params.get("title", "Untitled")),
                              list(params.get("components", [])))

    def _document(self, title: str, components: List[str]) -> Dict[str, Any]:
        author = self._config.get("author", "unknown")
        lines = [f"# {title}", "", f"Author: {author}", "", "## Components", ""]
        lines += [f"- **{name}**: responsibility, interfaces, data" for name in components]
        lines += ["", "## Risks", "", "- to be assessed"]
        document = "\n".join(lines) + "\n"
        self.bus.emit("design:generated", {"title": title, "components": len(components)})
        return {"title": title, "markdown": document}
