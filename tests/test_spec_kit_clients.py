"""Spec-Kit's own published packages, unchanged, on this runtime.

``specify-cli-extended`` 1.0.0 (the ``specify-extended`` console script, whose
``RuntimeAdapter`` drives ``PluginContainer``) and ``spec-kit-core`` 1.0.0
(``SpecKitCore.connect_runtime``) are installed from PyPI by the test extra. The expected
answers are the ones they give on the original runtime 1.0.1, for a plugin made by
``specify-extended plugin new``; each plugin runs in its own worker here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from spec_kit_contracts import Command, PluginStatus

from conftest import (
    PLUGINS,
    copy_plugin,
    kill_survivors,
    running_container,
    runtime_dir_of,
    wait_until,
)
from spec_kit_runtime import PluginContainer
from spec_kit_runtime.errors import PluginStateError

pytestmark = pytest.mark.timeout(120)
SCRIPT = Path(sys.executable).with_name("specify-extended")


def _environment(home: Path, short_tmp: Path, mark: str) -> dict[str, str]:
    """The CLI's environment: its own home, TMPDIR (short: socket paths live in it) and
    state folder, a wide terminal, and a mark every process it starts inherits."""
    for folder in ("home", "state"):
        (home / folder).mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home / "home"), "TMPDIR": str(short_tmp),
            "XDG_STATE_HOME": str(home / "state"), "COLUMNS": "200", "NO_COLOR": "1",
            "SPEC_KIT_TEST_MARK": mark}


def _marked(mark: str) -> set[int]:
    """Our processes that inherited ``mark``: the CLI's supervisors, fork servers, workers."""
    found = set()
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("SPEC_KIT_TEST_MARK") == mark:
                found.add(process.pid)
    return found


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project made by ``specify-extended init`` with a ``plugin new hello`` plugin; at
    the end, every process the CLI calls started is gone and their TMPDIR is empty."""
    short_tmp = Path(tempfile.mkdtemp(prefix="sk-", dir="/tmp"))
    mark = uuid.uuid4().hex
    env = _environment(tmp_path, short_tmp, mark)
    try:
        subprocess.run([SCRIPT, "init", "demo"], cwd=tmp_path, env=env, check=True,
                       capture_output=True, timeout=60)
        root = tmp_path / "demo"
        subprocess.run([SCRIPT, "plugin", "new", "hello"], cwd=root, env=env, check=True,
                       capture_output=True, timeout=60)
        yield root, env
        wait_until(lambda: not _marked(mark), timeout=15.0, what="the CLI's processes to end")
        wait_until(lambda: not any(short_tmp.iterdir()), timeout=5.0, what="TMPDIR emptied")
    finally:
        kill_survivors(_marked(mark))
        shutil.rmtree(short_tmp, ignore_errors=True)


def _cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """One CLI call, its pipes read to their end: nothing the private supervisor (or its
    fork server and workers) logs may reach them, during the call or after it."""
    result = subprocess.run([SCRIPT, "plugin", *args], cwd=root, env=env, text=True,
                            capture_output=True, timeout=60)
    assert "spec_kit_runtime.supervisor" not in result.stdout + result.stderr
    assert "spec_kit_worker" not in result.stdout + result.stderr
    return result


def test_console_script_commands_each_in_a_process(
        project: tuple[Path, dict[str, str]]) -> None:
    """Every ``specify-extended plugin`` command, each a new process, answers as on 1.0.1
    (nothing stays loaded between two calls, as there)."""
    root, env = project
    listed = _cli(root, env, "list")
    assert (listed.returncode, "No plugins found" in listed.stdout) == (0, True)

    everything = _cli(root, env, "list", "--all")
    assert everything.returncode == 0, everything.stderr
    row = next(line for line in everything.stdout.splitlines() if "hello" in line)
    assert all(word in row for word in ("1.0.0", "○ Inactive", "command"))

    info = _cli(root, env, "info", "hello")
    assert info.returncode == 0, info.stderr
    assert "hello v1.0.0" in info.stdout and "Status: discovered" in info.stdout
    schema = info.stdout[info.stdout.index("{"):]
    assert json.loads(schema) == {"type": "object",
                                  "properties": {"enabled": {"type": "boolean", "default": True}}}

    loaded = _cli(root, env, "load", "hello")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "✓ Plugin 'hello' loaded successfully" in loaded.stdout

    hello = _cli(root, env, "exec", "hello:hello Ada")
    assert hello.returncode == 0, hello.stdout + hello.stderr
    assert "✓ Command executed successfully" in hello.stdout
    answer = hello.stdout[hello.stdout.index("{"):]
    assert json.loads(answer) == {"success": True, "message": "Hello, Ada!"}

    status = _cli(root, env, "exec", "hello:status")
    assert json.loads(status.stdout[status.stdout.index("{"):]) == {
        "success": True, "status": "active", "name": "hello", "version": "1.0.0"}

    nobody = _cli(root, env, "exec", "nope:x")
    assert nobody.returncode == 1  # 1.0.1 said "executed successfully" here
    assert "Command failed: no plugin handles 'command:nope:x'" in nobody.stdout

    commands = _cli(root, env, "commands")
    assert (commands.returncode, "No plugin commands available" in commands.stdout) == (0, True)

    unloaded = _cli(root, env, "unload", "hello")
    assert unloaded.returncode == 1
    assert "Plugin 'hello' is not loaded" in unloaded.stdout


def test_the_typer_app_called_several_times_in_one_process(
        project: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process the container lives on between commands, as in 1.0.1: a loaded
    plugin lists as active, with its own metadata, commands and schema."""
    from specify_cli_extended import cli
    from typer.testing import CliRunner

    root, env = project
    manifest = root / ".specify" / "plugins" / "hello-plugin" / "plugin.json"
    data = json.loads(manifest.read_text())
    data["commands"] = [{"name": "hello:hello", "description": "Say hello"}]
    manifest.write_text(json.dumps(data))
    for key in ("HOME", "TMPDIR", "XDG_STATE_HOME", "COLUMNS"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.chdir(root)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli.app, ["plugin", *args])
        assert result.exit_code == 0, result.output
        return result.output

    try:
        assert "loaded successfully" in run("load", "hello")
        row = next(line for line in run("list").splitlines() if "hello" in line)
        assert "✓ Active" in row and "command" in row
        info = run("info", "hello")
        assert "Status: active" in info and "hello plugin for Spec-Kit" in info
        assert '"enabled"' in info
        commands = run("commands")
        assert "hello:hello" in commands and "Say hello" in commands
        assert "Hello, Bo!" in run("exec", "hello:hello Bo")
        assert "unloaded successfully" in run("unload", "hello")
        assert "No plugins found" in run("list")
    finally:
        if cli._runtime is not None:
            cli._runtime.shutdown()
            cli._runtime = None


def test_spec_kit_core_connects_and_serves_plugins(tmp_path: Path) -> None:
    """``SpecKitCore.connect_runtime(container, container.message_bus)``: a plugin's
    ``request:core:...`` reaches the core, which answers with a Response."""
    from spec_kit_core import SpecKitCore

    with running_container() as container:
        core = SpecKitCore(project_path=tmp_path)
        core.connect_runtime(container, container.message_bus)
        try:
            container.discover_plugins([PLUGINS / "host"])
            container.load_plugin(container.discovered_plugins["asker"], {})
            container.activate_plugin("asker")
            checked = container.message_bus.send(Command(command_name="asker:ask",
                                                         arguments=["core:check"]))
            assert checked["type"] == "Response" and checked["success"] is True
            assert set(checked["result"]["tools"]) == {"git", "python", "uv"}
            unknown = container.message_bus.send(Command(command_name="asker:ask",
                                                         arguments=["core:nothing"]))
            assert unknown == {"type": "Response", "success": False, "result": None,
                               "error": "Unknown method: core:nothing"}
        finally:
            core.shutdown()


def test_the_cli_attaches_where_the_environment_says(
        project: tuple[Path, dict[str, str]]) -> None:
    """SPEC_KIT_RUNTIME_ATTACH: the unchanged CLI uses a running supervisor, no private one;
    a plugin it loads stays loaded there, so the next call finds it active."""
    root, env = project
    with running_container() as shared:
        attached = {**env, "SPEC_KIT_RUNTIME_ATTACH": str(runtime_dir_of(shared))}
        first = _cli(root, attached, "exec", "hello:hello Ann")
        assert '"message": "Hello, Ann!"' in first.stdout, first.stdout + first.stderr
        again = _cli(root, attached, "exec", "hello:hello Bob")
        assert '"message": "Hello, Bob!"' in again.stdout, again.stdout + again.stderr
        row = next(line for line in _cli(root, attached, "list").stdout.splitlines()
                   if "hello" in line)
        assert "✓ Active" in row
        assert shared.get_plugin_status("hello") is PluginStatus.ACTIVE
        assert not any(Path(env["TMPDIR"]).iterdir())  # no private supervisor was started
        nowhere = {**env, "SPEC_KIT_RUNTIME_ATTACH": str(root / "no-such-runtime")}
        listed = _cli(root, nowhere, "list")  # nothing there: a private supervisor after all
        assert (listed.returncode, "No plugins found" in listed.stdout) == (0, True)


def test_attach_by_environment_yields_to_explicit_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``{"attach": False}`` wins over the variable; a relative directory is ignored (it
    would depend on where the caller stands); a plugin of the same id from another folder
    is not taken for the one loaded."""
    with running_container() as shared:
        shared_pid = shared.status()["supervisor"]["pid"]
        monkeypatch.setenv("SPEC_KIT_RUNTIME_ATTACH", str(runtime_dir_of(shared)))
        attached = PluginContainer()
        try:
            assert attached.status()["supervisor"]["pid"] == shared_pid
            attached.discover_plugins([PLUGINS / "host"])
            attached.load_plugin(attached.discovered_plugins["asker"], {})
            other = copy_plugin(PLUGINS / "host" / "asker", tmp_path, "asker")
            attached.discover_plugins([other.parent])
            with pytest.raises(PluginStateError, match="is loaded from"):
                attached.load_plugin(attached.discovered_plugins["asker"], {})
        finally:
            attached.shutdown()
        for settings, variable in (({"attach": False}, str(runtime_dir_of(shared))),
                                   ({}, "relative/runtime")):
            monkeypatch.setenv("SPEC_KIT_RUNTIME_ATTACH", variable)
            with running_container(**settings) as private:
                assert private.status()["supervisor"]["pid"] != shared_pid
