"""The code cache without a process: the key check, the caps, malformed messages, the
loader (a hit, a miss that offers, garbage), and the fork server's return channels."""

from __future__ import annotations

import importlib.util
import marshal
import os
import select
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.birth.code_returns import CodeReturns
from spec_kit_worker.loop import code_cache
from spec_kit_worker.loop.code_cache import CachingLoader, name_of

pytestmark = pytest.mark.timeout(20)
KEY = (1, 2, 3, 4)
NAME = name_of("p", "/plugins/p/p_plugin.py")
CODE = marshal.dumps(compile("x = 1\n", "/plugins/p/p_plugin.py", "exec", dont_inherit=True))


def message(key: tuple[int, int, int, int] = KEY, code: bytes = CODE) -> bytes:
    return code_cache._HEADER.pack(*key) + code


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A cache of this test's own; the timeline marks it makes, recorded."""
    marks: list[str] = []
    monkeypatch.setattr(code_cache, "_entries", {})
    monkeypatch.setattr(code_cache, "_total", 0)
    monkeypatch.setattr(code_cache, "mark", marks.append)
    yield marks


@pytest.mark.parametrize(("name", "key", "hit"), [
    (NAME, KEY, True),
    (NAME, (9, 2, 3, 4), False),  # another device
    (NAME, (1, 9, 3, 4), False),  # another inode: replaced by a rename
    (NAME, (1, 2, 9, 4), False),  # another size
    (NAME, (1, 2, 3, 9), False),  # another mtime
    (name_of("q", "/plugins/p/p_plugin.py"), KEY, False),  # another plugin, the same file
    (name_of("p", "/plugins/p/other.py"), KEY, False),
])
def test_an_entry_is_found_only_by_its_name_and_key(
        name: code_cache.Name, key: code_cache.Key, hit: bool) -> None:
    assert code_cache.store(NAME, message())
    assert code_cache.lookup(name, key) == (CODE if hit else None)


def test_names_are_spelled_alike_from_a_bootstrap_string_and_a_path() -> None:
    assert name_of("p", "/a//b/./c.py") == name_of("p", Path("/a/b/c.py"))


@pytest.mark.parametrize("bad", [
    b"", b"\0" * code_cache._HEADER.size,  # nothing after the key
    b"\0" * 10,  # shorter than a key
    message(code=b"c" * (code_cache.MAX_ENTRY_BYTES + 1)),  # too large
    "not bytes",
])
def test_a_malformed_or_too_large_message_is_not_kept(bad: bytes) -> None:
    assert code_cache.store(NAME, message())
    assert not code_cache.store(NAME, bad)
    assert code_cache.lookup(NAME, KEY) is None  # the older version is dropped too
    assert code_cache._total == 0


def test_the_largest_entry_fits() -> None:
    assert code_cache.store(NAME, message(code=b"c" * code_cache.MAX_ENTRY_BYTES))


def test_the_total_is_capped_and_a_replaced_entry_frees_its_room(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_cache, "MAX_TOTAL_BYTES", 2 * len(CODE))
    assert code_cache.store(name_of("a", "/a.py"), message())
    assert code_cache.store(name_of("b", "/b.py"), message())
    assert not code_cache.store(name_of("c", "/c.py"), message())  # full
    assert code_cache.store(name_of("b", "/b.py"), message(key=(5, 6, 7, 8)))  # replaced
    assert code_cache._total == 2 * len(CODE)
    assert code_cache.lookup(name_of("b", "/b.py"), (5, 6, 7, 8)) == CODE


# -- the worker's loader -------------------------------------------------------------------

def load(path: Path, back: socket.socket | None) -> tuple[object, CachingLoader]:
    """Import ``path`` as ``loader._import_alone`` does (not left in sys.modules)."""
    spec = importlib.util.spec_from_file_location("cache_test_module", path)
    assert spec is not None and spec.origin is not None
    loader = CachingLoader("cache_test_module", spec.origin, name_of("p", path), back)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    try:
        loader.exec_module(module)
    finally:
        sys.modules.pop("cache_test_module", None)
    return module, loader


@pytest.fixture
def plugin_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module that asks ``builtins.probe()`` (the test's) as it runs."""
    monkeypatch.setattr("builtins.probe", lambda: None, raising=False)
    path = tmp_path / "p_plugin.py"
    path.write_text("WHERE = __file__\nPROBED = probe()\nVALUE = 1\n")
    return path


def test_a_miss_compiles_offers_and_closes_the_channel_before_the_module_runs(
        plugin_file: Path, empty_cache: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    ours, its = code_cache.channel()
    with ours:
        monkeypatch.setattr("builtins.probe", lambda: its.fileno(), raising=False)
        module, _ = load(plugin_file, its)
        assert module.PROBED == -1  # type: ignore[attr-defined]  # closed as the module ran
        sent = ours.recv(code_cache.MAX_MESSAGE_BYTES + 1, socket.MSG_DONTWAIT)
    assert code_cache.store(name_of("p", plugin_file), sent)
    assert empty_cache == []
    key = code_cache.key_of(os.stat(plugin_file))
    assert sent[:code_cache._HEADER.size] == code_cache._HEADER.pack(*key)
    code = marshal.loads(sent[code_cache._HEADER.size:])
    assert code.co_filename == str(plugin_file) == module.WHERE  # type: ignore[attr-defined]


def test_a_hit_runs_the_cached_code_and_the_module_looks_as_usual(
        plugin_file: Path, empty_cache: list[str]) -> None:
    key = code_cache.key_of(os.stat(plugin_file))
    other = compile("WHERE = __file__\nVALUE = 2\n", str(plugin_file), "exec", dont_inherit=True)
    assert code_cache.store(name_of("p", plugin_file), message(key, marshal.dumps(other)))
    module, _ = load(plugin_file, None)
    assert empty_cache == ["code-cached"]
    assert module.VALUE == 2  # type: ignore[attr-defined]  # the cached code ran, not the file
    assert module.__file__ == module.WHERE == str(plugin_file)  # type: ignore[attr-defined]
    assert module.__spec__ is not None and module.__spec__.origin == str(plugin_file)


@pytest.mark.parametrize("entry", [
    b"garbage",
    marshal.dumps(("not", "code")),
    marshal.dumps(compile("VALUE = 2\n", "/elsewhere.py", "exec")),  # another co_filename
])
def test_an_unusable_entry_is_compiled_over(plugin_file: Path, empty_cache: list[str],
                                            entry: bytes) -> None:
    assert code_cache.store(name_of("p", plugin_file),
                            message(code_cache.key_of(os.stat(plugin_file)), entry))
    module, _ = load(plugin_file, None)
    assert empty_cache == []
    assert module.VALUE == 1  # type: ignore[attr-defined]


def test_an_edited_file_misses(plugin_file: Path, empty_cache: list[str]) -> None:
    key = code_cache.key_of(os.stat(plugin_file))
    stale = compile("VALUE = 2\n", str(plugin_file), "exec", dont_inherit=True)
    assert code_cache.store(name_of("p", plugin_file), message(key, marshal.dumps(stale)))
    plugin_file.write_text(plugin_file.read_text() + "VALUE = 3\n")
    module, _ = load(plugin_file, None)
    assert empty_cache == [] and module.VALUE == 3  # type: ignore[attr-defined]


# -- the fork server's return channels -----------------------------------------------------

BOOT = Bootstrap(endpoint="ipc:///x", plugin_id="p", secret=b"s" * 32, parent_pid=1,
                 plugin_file="/plugins/p/p_plugin.py", entry_point="P", sandbox=False,
                 scope=(), max_message_bytes=1 << 20, request_timeout=1.0, memory_mb=None,
                 cpu_seconds=None, open_files=None, cgroups=(), plugin_dir="/plugins/p",
                 data_dir="/d", landlock=True, network=False, own_network=True, uid=None,
                 gid=None)


def test_what_a_worker_sends_is_kept_under_its_bootstraps_name_and_the_channel_closed() -> None:
    poller = select.poll()
    returns = CodeReturns(poller)
    ours, its = code_cache.channel()
    with its:
        returns.watch(42, ours, BOOT)
        fd = ours.fileno()
        assert fd in returns and returns.fds() == (fd,)
        its.send(message())
        assert [ready for ready, _ in poller.poll(1000)] == [fd]
        returns.ready(fd)
    assert ours.fileno() == -1 and not returns.fds() and poller.poll(0) == []
    assert code_cache.lookup(NAME, KEY) == CODE


def test_a_largest_message_crosses_the_channel_in_one_packet() -> None:
    returns = CodeReturns(select.poll())
    ours, its = code_cache.channel()
    with its:
        returns.watch(42, ours, BOOT)
        its.send(message(code=b"c" * code_cache.MAX_ENTRY_BYTES), socket.MSG_DONTWAIT)
        returns.ready(ours.fileno())
    assert code_cache.lookup(NAME, KEY) == b"c" * code_cache.MAX_ENTRY_BYTES


@pytest.mark.parametrize("how", ["closed", "garbage", "too large", "reaped"])
def test_a_channel_ends_without_code_quietly(how: str) -> None:
    poller = select.poll()
    returns = CodeReturns(poller)
    ours, its = code_cache.channel()
    with its:
        returns.watch(42, ours, BOOT)
        fd = ours.fileno()
        if how == "closed":
            its.close()
        elif how == "garbage":
            its.send(b"x")
        elif how == "too large":
            its.send(b"x" * (code_cache.MAX_MESSAGE_BYTES + 1))
        if how == "reaped":
            returns.ended(42)
        else:
            returns.ready(fd)
    assert ours.fileno() == -1 and fd not in returns and not code_cache._entries


def test_a_reaped_workers_code_is_still_taken() -> None:
    returns = CodeReturns(select.poll())
    ours, its = code_cache.channel()
    with its:
        returns.watch(42, ours, BOOT)
        its.send(message())
    returns.ended(41)  # another worker's end
    assert ours.fileno() != -1
    returns.ended(42)
    assert ours.fileno() == -1 and code_cache.lookup(NAME, KEY) == CODE


def test_a_sandboxed_plugins_channel_is_closed_at_once() -> None:
    returns = CodeReturns(select.poll())
    ours, its = code_cache.channel()
    with its:
        returns.watch(42, ours, Bootstrap(**{**BOOT.__dict__, "sandbox": True}))
    assert ours.fileno() == -1 and not returns.fds()
