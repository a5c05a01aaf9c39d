"""Test plugin (sandboxed: its source may not even name ``open`` or import ``os``): it
touches the world through the host services only.

Every command answers what happened, exceptions included (by class name), so a test can
read refusals as well as results.
"""

from typing import Any

from spec_kit_contracts import (
    IConfigService,
    IEventService,
    IFileSystemService,
    ILoggingService,
    IPluginMetadata,
    IStateService,
    PluginBase,
)


def _outcome(call: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "result": call()}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__, "message": str(exc),
                "oserror": isinstance(exc, OSError)}


class NotesPlugin(PluginBase):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []
        self.subscription = ""

    def _create_metadata(self) -> IPluginMetadata:
        return IPluginMetadata(name="notes", version="1.0.0", author="tests", description="n")

    def get_config_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def register_services(self, registry: Any) -> None:
        self.fs = registry.get_service(IFileSystemService)
        self.state = registry.get_service(IStateService)
        self.config = registry.get_service(IConfigService)
        self.log = registry.get_service(ILoggingService)
        self.events = registry.get_service(IEventService)
        self.subscription = self.events.subscribe("notes:*", self.record)
        registry.register_command("notes:fs", self.files)
        registry.register_command("notes:state", self.states)
        registry.register_command("notes:config", self.configs)
        registry.register_command("notes:log", self.logs)
        registry.register_command("notes:emit", self.emit)
        registry.register_command("notes:seen", self.read_seen)
        registry.register_command("notes:subscribe", self.subscribe)
        registry.register_command("notes:unsubscribe", self.unsubscribe)
        registry.register_command("notes:missing_service", self.missing_service)
        self.registry = registry

    def files(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        op, *rest = arguments
        fs = self.fs
        if op == "write":
            return _outcome(lambda: fs.write_file(rest[0], options["content"]))
        if op == "read":
            return _outcome(lambda: fs.read_file(rest[0]))
        if op == "exists":
            return _outcome(lambda: fs.exists(rest[0]))
        if op == "mkdir":
            return _outcome(lambda: fs.create_directory(rest[0], options.get("parents", True)))
        if op == "list":
            return _outcome(lambda: [str(p) for p in fs.list_directory(rest[0], *rest[1:])])
        if op == "delete":
            return _outcome(lambda: fs.delete(rest[0]))
        return {"ok": False, "error": "unknown op"}

    def states(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        op, *rest = arguments
        state = self.state
        if op == "set":
            return _outcome(lambda: state.set_state(rest[0], options["value"]))
        if op == "get":
            return _outcome(lambda: state.get_state(rest[0], "<unset>"))
        if op == "clear":
            return _outcome(lambda: state.clear_state(rest[0] if rest else None))
        if op == "persist":
            return _outcome(state.persist_state)
        return {"ok": False, "error": "unknown op"}

    def configs(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        op, *rest = arguments
        config = self.config
        if op == "get":
            return _outcome(lambda: config.get(rest[0], "<unset>"))
        if op == "section":
            return _outcome(lambda: config.get_section(rest[0]))
        if op == "set":
            return _outcome(lambda: config.set(rest[0], options["value"]))
        if op == "save":
            return _outcome(config.save)
        return {"ok": False, "error": "unknown op"}

    def logs(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        level, message, count = arguments[0], arguments[1], int(options.get("count", 1))
        log = self.log
        if options.get("set_level"):
            log.set_level(options["set_level"])
        write = {"debug": log.debug, "info": log.info, "warning": log.warning,
                 "error": log.error, "critical": log.critical}[level]
        for index in range(count):
            write(message, index=index)
        return {"ok": True, "result": count}

    def emit(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.events.emit(arguments[0], {"n": options.get("n")}))

    def record(self, event: Any) -> None:
        self.seen.append({"event": event.event_name, "data": event.event_data,
                          "source": event.source})

    def read_seen(self, arguments: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.seen)

    def subscribe(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.events.subscribe(arguments[0], self.record))

    def unsubscribe(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.events.unsubscribe(self.subscription))

    def missing_service(self, arguments: list[str], options: dict[str, Any]) -> dict[str, Any]:
        return _outcome(lambda: self.registry.get_service(PluginBase))

    def handle_message(self, message: Any) -> None:
        return None
