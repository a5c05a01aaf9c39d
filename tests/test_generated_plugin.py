"""Plugins as Spec-Kit's generator makes them, in real supervisors and workers.

``specify-extended plugin new greeter`` writes ``src/greeter_plugin/{__init__,plugin}.py``
and a manifest requiring ``spec-kit-contracts>=1.0.0``: it loads, its package's relative
imports work, and an unmet requirement refuses the load before any worker starts. A
sandboxed plugin laid out the same way gets its relative imports too, each of its modules
checked by the sandbox.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from spec_kit_contracts import Command

from conftest import running_container, wait_until
from generated_plugins import add_relative_import, generate
from spec_kit_runtime import (
    LifecycleError,
    PluginContainer,
    RequirementError,
    SupervisorClient,
)
from test_cli import start_run, stop_run, wait_active

pytestmark = pytest.mark.timeout(40)


def load_greeter(container: PluginContainer, search: Path) -> None:
    container.discover_plugins([search])
    assert container.discovery_errors == []
    container.load_plugin(container.discovered_plugins["greeter"], config={"enabled": True})
    container.activate_plugin("greeter")


def hello(container: PluginContainer, name: str) -> object:
    return container.send_message(
        "greeter", Command(command_name="greeter:hello", arguments=[name]))


def test_generated_plugin_loads_with_a_relative_import(tmp_path: Path) -> None:
    search = tmp_path / ".specify" / "plugins"
    add_relative_import(generate(search))
    with running_container() as container:
        load_greeter(container, search)
        assert hello(container, "X") == {"success": True, "message": "Hello, X!"}
        status = container.send_message(
            "greeter", Command(command_name="greeter:status", arguments=[]))
        assert status == {"success": True, "status": "active", "name": "greeter",
                          "version": "1.0.0"}


def test_unmet_requirements_refuse_the_load_until_met(tmp_path: Path) -> None:
    search = tmp_path / "plugins"
    folder = generate(search, dependencies=["spec-kit-contracts>=99",
                                            "no-such-package-for-spec-kit>=1"])
    add_relative_import(folder)
    with running_container() as container:
        container.discover_plugins([search])
        with pytest.raises(RequirementError) as refused:
            container.load_plugin(container.discovered_plugins["greeter"])
        error = refused.value
        assert isinstance(error, LifecycleError)
        assert error.plugin == "greeter"
        assert "plugin 'greeter' cannot be started: requirements not met" in error.message
        assert error.unmet == [
            "spec-kit-contracts>=99 (spec-kit-contracts 1.0.0 is installed)",
            "no-such-package-for-spec-kit>=1 (no-such-package-for-spec-kit is not installed)",
        ]
        (entry,) = container.status()["plugins"]
        assert (entry["state"], entry["pid"]) == ("error", None)  # no worker was started
        with pytest.raises(RequirementError, match="spec-kit-contracts>=99"):
            container.start_plugin("greeter")  # a start asked for is checked as well

        manifest = folder / "plugin.json"
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "dependencies": [
            "spec-kit-contracts>=1.0.0", "no-such-package-for-spec-kit>=1; python_version<'3'",
        ]}))
        load_greeter(container, search)
        assert hello(container, "again") == {"success": True, "message": "Hello, again!"}


def test_run_does_not_start_a_plugin_with_unmet_requirements(tmp_path: Path) -> None:
    search = tmp_path / "plugins"
    generate(search, "greeter")
    generate(search, "needy", dependencies=["spec-kit-contracts>=99"])
    runtime_dir = tmp_path / "rt"
    run = start_run(tmp_path, "--plugins", str(search), "--runtime-dir", str(runtime_dir),
                    runtime_dir=runtime_dir)
    try:
        wait_active(run, {"greeter"})
        client = SupervisorClient.find(runtime_dir)
        try:
            health = wait_until(lambda: (found := client.control("health", timeout=5.0))
                                and not any("starting" in r for r in found["reasons"])
                                and found)
        finally:
            client.close()
    finally:
        stop_run(run)
    assert health["status"] == "unhealthy"
    reasons = "\n".join(health["reasons"])
    assert "needy" in reasons
    assert "spec-kit-contracts>=99 (spec-kit-contracts 1.0.0 is installed)" in reasons


# -- the sandboxed path ------------------------------------------------------------------------

PACKAGE_PLUGIN = {
    "__init__.py": "from .plugin import Plugin\n",
    "plugin.py": """
        from spec_kit_contracts import IPluginMetadata, PluginBase

        from . import tools
        from .tools.words import greeting


        class Plugin(PluginBase):
            def _create_metadata(self) -> IPluginMetadata:
                return IPluginMetadata(name="boxed", version="1.0.0", author="a",
                                       description="d")

            def get_config_schema(self):
                return {}

            def handle_message(self, message):
                return None

            def register_services(self, registry):
                registry.register_command("boxed:hello", self.hello)

            def hello(self, arguments, options):
                return {"message": greeting(arguments[0]), "shout": tools.shout(arguments[0])}
    """,
    "tools/__init__.py": "from ..helpers import upper\n\ndef shout(text):\n"
                         "    return upper(text) + '!'\n",
    "tools/words.py": "def greeting(name):\n    return 'Hello, ' + name + '!'\n",
    "helpers.py": "def upper(text):\n    return text.upper()\n",
}


def sandboxed_package(where: Path, files: dict[str, str]) -> Path:
    """A sandboxed plugin ``boxed`` whose file is ``src/boxed/plugin.py``, in a package."""
    folder = where / "boxed"
    for name, text in files.items():
        path = folder / "src" / "boxed" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (folder / "plugin.json").write_text(json.dumps({
        "id": "boxed", "name": "boxed", "version": "1.0.0", "file": "src/boxed/plugin.py",
        "sandbox": True, "dependencies": ["spec-kit-contracts>=1.0"]}))
    return folder


def test_sandboxed_plugin_in_a_package_gets_relative_imports(tmp_path: Path) -> None:
    sandboxed_package(tmp_path, PACKAGE_PLUGIN)
    with running_container() as container:
        container.discover_plugins([tmp_path])
        container.load_plugin(container.discovered_plugins["boxed"])
        container.activate_plugin("boxed")
        reply = container.send_message(
            "boxed", Command(command_name="boxed:hello", arguments=["box"]))
        assert reply == {"message": "Hello, box!", "shout": "BOX!"}


def test_sandbox_checks_the_modules_a_relative_import_reaches(tmp_path: Path) -> None:
    files = {**PACKAGE_PLUGIN, "helpers.py": "import os\n\ndef upper(text):\n"
                                             "    return os.name\n"}
    folder = sandboxed_package(tmp_path, files)
    with running_container() as container:
        container.discover_plugins([tmp_path])
        with pytest.raises(LifecycleError) as refused:
            container.load_plugin(container.discovered_plugins["boxed"])
    assert refused.value.context["exception"] == "SandboxViolation"
    helpers = (folder / "src" / "boxed" / "helpers.py").resolve()
    assert f"{helpers}:1: import of blocked module 'os'" in str(refused.value)
