"""The code cache without a supervisor: the sealed memfd's format, what the fork server
accepts of a worker (a sealed memfd, nothing else), its store's caps, the loader (a hit, a
miss that offers, garbage, a same-size edit), and the fork server's return channels."""

from __future__ import annotations

import fcntl
import importlib.util
import io
import marshal
import os
import select
import socket
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import edit_unseen
from spec_kit_runtime.wire.bootstrap import Bootstrap
from spec_kit_worker.birth.code_returns import CodeReturns
from spec_kit_worker.birth.code_store import CodeStore
from spec_kit_worker.loop import code_cache, code_memfd
from spec_kit_worker.loop.code_cache import CachingLoader

pytestmark = pytest.mark.timeout(20)
SOURCE = b"x = 1\n"
DIGEST = code_cache.digest_of(SOURCE)
CODE = marshal.dumps(compile(SOURCE, "/plugins/p/p_plugin.py", "exec", dont_inherit=True))


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def no_fd_left() -> Iterator[None]:
    """Every test closes what it opened, and what it was handed."""
    before = open_fds()
    yield
    left = {fd for fd in open_fds() - before if is_open(fd)}
    assert not left, {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in left}


@pytest.fixture
def marks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The timeline marks the loader makes."""
    made: list[str] = []
    monkeypatch.setattr(code_cache, "mark", made.append)
    return made


def memfd(data: bytes, seals: int = code_memfd.SEALS, sealing: bool = True) -> int:
    fd = os.memfd_create("test", os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if sealing else 0))
    os.write(fd, data)
    if seals:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


# -- the sealed memfd ------------------------------------------------------------------------

def test_a_memfd_written_is_sealed_and_read_back_only_for_its_digest() -> None:
    fd = code_memfd.write(DIGEST, CODE)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & code_memfd.SEALS == code_memfd.SEALS
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")
        with pytest.raises(OSError):
            os.pwrite(fd, b"y", code_memfd.HEADER_BYTES)  # sealed: no one changes it
        assert code_memfd.checked_size(fd) == code_memfd.HEADER_BYTES + len(CODE)
        read = code_memfd.read(fd, DIGEST)
        assert read is not None and bytes(read) == CODE
        assert code_memfd.read(fd, code_cache.digest_of(b"x = 2\n")) is None
    finally:
        os.close(fd)


def test_a_code_too_large_is_not_written() -> None:
    with pytest.raises(ValueError):
        code_memfd.write(DIGEST, b"c" * (code_memfd.MAX_CODE_BYTES + 1))
    os.close(code_memfd.write(DIGEST, b"c" * code_memfd.MAX_CODE_BYTES))  # the largest fits


def header(digest: bytes = DIGEST, version: int = code_memfd.VERSION,
           magic: bytes = importlib.util.MAGIC_NUMBER) -> bytes:
    return code_memfd._HEADER.pack(code_memfd.MAGIC, version, magic, digest)


@pytest.mark.parametrize("data", [
    header(version=code_memfd.VERSION + 1) + CODE,  # another format
    header(magic=b"\0\0\r\n") + CODE,  # another interpreter's bytecode
    header()[:-1],  # shorter than a header
])
def test_a_memfd_of_another_format_is_not_read(data: bytes) -> None:
    fd = memfd(data)
    try:
        assert code_memfd.read(fd, DIGEST) is None
    finally:
        os.close(fd)


def plain_file(tmp_path: Path) -> tuple[int, ...]:
    path = tmp_path / "code"
    path.write_bytes(header() + CODE)
    return (os.open(path, os.O_RDONLY),)


def shm_file(tmp_path: Path) -> tuple[int, ...]:  # tmpfs, as a memfd; but it seals nothing
    fd = os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR)
    os.write(fd, header() + CODE)
    return (fd,)


@pytest.mark.parametrize("make", [
    lambda tmp: (memfd(header() + CODE, seals=0),),  # unsealed
    lambda tmp: (memfd(header() + CODE, seals=0, sealing=False),),  # unsealable
    lambda tmp: (memfd(header() + CODE, seals=code_memfd.SEALS & ~fcntl.F_SEAL_WRITE),),
    lambda tmp: (memfd(header() + CODE, seals=code_memfd.SEALS & ~fcntl.F_SEAL_SEAL),),
    lambda tmp: (memfd(header() + b"c" * (code_memfd.MAX_CODE_BYTES + 1)),),  # too large
    lambda tmp: (memfd(header()),),  # no code
    lambda tmp: (memfd(b""),),
    plain_file,
    shm_file,
    lambda tmp: os.pipe2(os.O_CLOEXEC),
], ids=["unsealed", "unsealable", "writable", "sealable", "too large", "no code", "empty",
        "a file", "a tmpfs file", "a pipe"])
def test_the_fork_server_takes_nothing_but_a_sealed_memfd_of_the_right_size(
        tmp_path: Path, make: Callable[[Path], tuple[int, ...]]) -> None:
    fds = make(tmp_path)
    try:
        assert code_memfd.checked_size(fds[0]) is None
    finally:
        for fd in fds:
            os.close(fd)


# -- the fork server's store -----------------------------------------------------------------

P = ("p", "/plugins/p/p_plugin.py")  # a plugin id and file, as in BOOT below


def sealed(code: bytes = CODE) -> int:
    return code_memfd.write(DIGEST, code)


def test_the_store_keeps_a_plugins_latest_code_and_closes_the_replaced_one() -> None:
    store = CodeStore()
    first, second = sealed(), sealed()
    assert store.keep(P, first) and store.fd_of(P) == first
    assert store.keep(P, second)
    assert store.fd_of(P) == second and not is_open(first)
    assert store.fds() == (second,) and len(store) == 1
    assert store.total == code_memfd.HEADER_BYTES + len(CODE)
    store.drop("p")
    assert not is_open(second) and store.total == 0 and store.fd_of(P) is None


def test_a_plugin_loaded_from_another_file_under_the_same_id_gets_none_of_the_olders_code(
        ) -> None:
    store = CodeStore()
    older = sealed()
    assert store.keep(P, older)
    assert store.fd_of((P[0], "/elsewhere/other_plugin.py")) is None
    assert store.keep((P[0], "/elsewhere/other_plugin.py"), newer := sealed())
    assert not is_open(older) and store.fds() == (newer,)  # one plugin id, one code
    store.drop(P[0])
    assert not is_open(newer) and not store.fds()


def test_the_store_closes_what_it_refuses_and_drops_the_older_code() -> None:
    store = CodeStore()
    kept, bad = sealed(), memfd(header() + CODE, seals=0)
    assert store.keep(P, kept)
    assert not store.keep(P, bad)
    assert not is_open(bad) and not is_open(kept) and store.fd_of(P) is None


def test_past_its_caps_the_store_drops_the_least_recently_used() -> None:
    size = code_memfd.HEADER_BYTES + len(CODE)
    store = CodeStore(max_total=2 * size)
    a, b, c = sealed(), sealed(), sealed()
    assert store.keep(("a", "a.py"), a) and store.keep(("b", "b.py"), b)
    assert store.fd_of(("a", "a.py")) == a  # used: "b" is the least recently used now
    assert store.keep(("c", "c.py"), c)  # a new one is always kept: the old ones make room
    assert store.fds() == (a, c) and not is_open(b) and store.total == 2 * size
    few = CodeStore(max_entries=1)
    assert few.keep(("a", "a.py"), sealed()) and few.keep(("b", "b.py"), d := sealed())
    assert few.fds() == (d,)
    for fd in (*store.fds(), *few.fds()):
        os.close(fd)


def test_a_code_larger_than_the_whole_cap_is_not_kept() -> None:
    store = CodeStore(max_total=10)
    fd = sealed()
    assert not store.keep(P, fd)
    assert not is_open(fd) and store.total == 0 and not store.fds()


# -- the worker's side ------------------------------------------------------------------------

def load(path: Path, back: socket.socket | None, cached: int | None = None
         ) -> tuple[types.ModuleType, CachingLoader]:
    """Import ``path`` as ``loader._import_alone`` does (not left in sys.modules)."""
    spec = importlib.util.spec_from_file_location("cache_test_module", path)
    assert spec is not None and spec.origin is not None
    memfd_file = None if cached is None else io.FileIO(cached, "rb")
    loader = CachingLoader("cache_test_module", spec.origin, back, memfd_file)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    try:
        loader.exec_module(module)
    finally:
        sys.modules.pop("cache_test_module", None)
        if memfd_file is not None:
            memfd_file.close()
    return module, loader


@pytest.fixture
def plugin_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module that asks ``builtins.probe()`` (the test's) as it runs."""
    monkeypatch.setattr("builtins.probe", lambda: None, raising=False)
    path = tmp_path / "p_plugin.py"
    path.write_text("WHERE = __file__\nPROBED = probe()\nVALUE = 1\n")
    return path


def received(ours: socket.socket) -> int:
    """The one fd that came on the fork server's end of a return channel."""
    message, fds, flags, _ = socket.recv_fds(ours, 64, 2, socket.MSG_DONTWAIT)
    assert message == code_cache.OFFER and len(fds) == 1 and not flags
    return fds[0]


def test_a_miss_compiles_offers_a_sealed_memfd_and_closes_the_channel_before_the_module_runs(
        plugin_file: Path, marks: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    ours, its = code_cache.channel()
    with ours:
        monkeypatch.setattr("builtins.probe", lambda: its.fileno(), raising=False)
        module, _ = load(plugin_file, its)
        assert module.PROBED == -1  # closed as the module ran
        fd = received(ours)
    try:
        assert marks == []
        assert code_memfd.checked_size(fd) is not None
        data = code_memfd.read(fd, code_cache.digest_of(plugin_file.read_bytes()))
        assert data is not None
        code = marshal.loads(data)
        assert code.co_filename == str(plugin_file) == module.WHERE
    finally:
        os.close(fd)


def test_a_hit_runs_the_cached_code_and_the_module_looks_as_usual(
        plugin_file: Path, marks: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    other = compile("WHERE = __file__\nPROBED = probe()\nVALUE = 2\n", str(plugin_file), "exec",
                    dont_inherit=True)
    fd = code_memfd.write(code_cache.digest_of(plugin_file.read_bytes()), marshal.dumps(other))
    monkeypatch.setattr("builtins.probe", lambda: is_open(fd), raising=False)
    ours, its = code_cache.channel()
    with ours:
        module, _ = load(plugin_file, its, fd)
        assert ours.recv(64, socket.MSG_DONTWAIT) == b""  # nothing offered, the channel closed
    assert marks == ["code-cached"]
    assert module.VALUE == 2  # the cached code ran, not the file
    assert module.PROBED is False  # the memfd closed before it ran
    assert module.__file__ == module.WHERE == str(plugin_file)
    assert module.__spec__ is not None and module.__spec__.origin == str(plugin_file)


@pytest.mark.parametrize("entry", [
    b"garbage",
    marshal.dumps(("not", "code")),
    marshal.dumps(compile("VALUE = 2\n", "/elsewhere.py", "exec")),  # another co_filename
])
def test_an_unusable_entry_is_compiled_over_and_replaced(
        plugin_file: Path, marks: list[str], entry: bytes) -> None:
    fd = code_memfd.write(code_cache.digest_of(plugin_file.read_bytes()), entry)
    ours, its = code_cache.channel()
    with ours:
        module, _ = load(plugin_file, its, fd)
        os.close(received(ours))  # its own code, offered in its place
    assert marks == [] and module.VALUE == 1
    assert not is_open(fd)


def test_a_same_size_edit_with_its_mtime_put_back_runs_the_new_code(
        plugin_file: Path, marks: list[str]) -> None:
    """Finding 2: size, inode and mtime all as before; the bytes are not."""
    stale = compile(plugin_file.read_bytes(), str(plugin_file), "exec", dont_inherit=True)
    fd = code_memfd.write(code_cache.digest_of(plugin_file.read_bytes()), marshal.dumps(stale))
    edit_unseen(plugin_file, b"VALUE = 1", b"VALUE = 7")
    module, _ = load(plugin_file, None, fd)
    assert marks == [] and module.VALUE == 7


def test_a_pycache_file_is_never_used_nor_written(plugin_file: Path, marks: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Its check (the source's mtime in seconds, its size) would run a same-size edit's
    stale code past the sha256; and the worker writes none."""
    import py_compile

    pyc = Path(py_compile.compile(str(plugin_file), doraise=True))
    edit_unseen(plugin_file, b"VALUE = 1", b"VALUE = 7")
    module, _ = load(plugin_file, None)
    assert module.VALUE == 7
    pyc.unlink()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    load(plugin_file, None)
    assert not pyc.exists()


def test_a_code_marshal_refuses_is_loaded_all_the_same_and_not_offered(
        tmp_path: Path, marks: list[str]) -> None:
    """Finding 5: nested deeper than marshal goes (a lambda of lambdas)."""
    path = tmp_path / "deep.py"
    path.write_text("f = " + "lambda: " * 1000 + "1\nVALUE = 1\n")
    ours, its = code_cache.channel()
    with ours:
        module, _ = load(path, its)
        assert ours.recv(64, socket.MSG_DONTWAIT) == b""  # nothing sent, the channel closed
    assert module.VALUE == 1


# -- the fork server's return channels -----------------------------------------------------

BOOT = Bootstrap(endpoint="ipc:///x", plugin_id="p", secret=b"s" * 32, parent_pid=1,
                 plugin_file="/plugins/p/p_plugin.py", entry_point="P", sandbox=False,
                 scope=(), max_message_bytes=1 << 20, request_timeout=1.0, memory_mb=None,
                 cpu_seconds=None, open_files=None, cgroups=(), plugin_dir="/plugins/p",
                 data_dir="/d", landlock=True, network=False, own_network=True, uid=None,
                 gid=None)


@pytest.fixture
def store() -> Iterator[CodeStore]:
    kept = CodeStore()
    yield kept
    for plugin_id in ("p", "q"):
        kept.drop(plugin_id)


def watched(store: CodeStore) -> tuple[select.poll, CodeReturns, socket.socket, socket.socket]:
    """A poller, the fork server's returns on it, and a channel watched for worker 42 of
    BOOT: (poller, returns, the fork server's end, the worker's end, the test's to close)."""
    poller = select.poll()
    returns = CodeReturns(poller, store)
    ours, its = code_cache.channel()
    returns.watch(42, ours, BOOT)
    return poller, returns, ours, its


def test_what_a_worker_sends_is_kept_under_its_bootstraps_plugin_and_the_channel_closed(
        store: CodeStore) -> None:
    poller, returns, ours, its = watched(store)
    with its:
        fd = ours.fileno()
        assert fd in returns and returns.fds() == (fd,)
        assert code_cache.offer(its, DIGEST, compile(SOURCE, "/x.py", "exec"))
        assert [ready for ready, _ in poller.poll(1000)] == [fd]
        returns.ready(fd)
    assert ours.fileno() == -1 and not returns.fds() and poller.poll(0) == []
    kept = store.fd_of(P)
    assert kept is not None and code_memfd.read(kept, DIGEST) is not None


def send(its: socket.socket, how: str) -> None:
    """What a worker compromised before its plugin ran might send instead of its code."""
    good = sealed()
    try:
        if how == "unsealed":
            bad = memfd(header() + CODE, seals=0)
            socket.send_fds(its, [code_cache.OFFER], [bad])
            os.close(bad)
        elif how == "two fds":
            socket.send_fds(its, [code_cache.OFFER], [good, good])
        elif how == "a pipe":
            read, write = os.pipe()
            socket.send_fds(its, [code_cache.OFFER], [read])
            os.close(read)
            os.close(write)
        elif how == "another message":
            socket.send_fds(its, [b"cod3"], [good])
        elif how == "a longer message":
            socket.send_fds(its, [code_cache.OFFER * 100], [good])
        elif how == "no fd":
            its.send(code_cache.OFFER)
        elif how == "oversized":
            big = memfd(header() + b"c" * (code_memfd.MAX_CODE_BYTES + 1))
            socket.send_fds(its, [code_cache.OFFER], [big])
            os.close(big)
    finally:
        os.close(good)


@pytest.mark.parametrize("how", ["unsealed", "two fds", "a pipe", "another message",
                                 "a longer message", "no fd", "oversized"])
def test_anything_but_one_sealed_memfd_is_dropped_with_its_fds_and_the_older_code(
        store: CodeStore, how: str) -> None:
    store.keep(P, sealed())
    returns = CodeReturns(select.poll(), store)
    ours, its = code_cache.channel()
    before = open_fds()
    with its:
        returns.watch(42, ours, BOOT)
        send(its, how)
        returns.ready(ours.fileno())
    assert store.fd_of(P) is None and not store.fds()  # the older version is dropped too
    assert ours.fileno() == -1
    assert open_fds() <= before  # no fd received is left open


@pytest.mark.parametrize("how", ["closed", "reaped"])
def test_a_channel_ends_without_code_quietly_and_the_older_code_stays(
        store: CodeStore, how: str) -> None:
    store.keep(P, kept := sealed())  # a cache hit sends nothing: what it used stays
    _, returns, ours, its = watched(store)
    with its:
        fd = ours.fileno()
        if how == "closed":
            its.close()
            returns.ready(fd)
        else:
            returns.ended(42)
    assert ours.fileno() == -1 and fd not in returns and store.fd_of(P) == kept


def test_a_reaped_workers_code_is_still_taken(store: CodeStore) -> None:
    _, returns, ours, its = watched(store)
    with its:
        assert code_cache.offer(its, DIGEST, compile(SOURCE, "/x.py", "exec"))
    returns.ended(41)  # another worker's end
    assert ours.fileno() != -1
    returns.ended(42)
    assert ours.fileno() == -1 and store.fd_of(P) is not None


def test_a_sandboxed_plugins_channel_is_closed_at_once(store: CodeStore) -> None:
    returns = CodeReturns(select.poll(), store)
    ours, its = code_cache.channel()
    with its:
        returns.watch(42, ours, Bootstrap(**{**BOOT.__dict__, "sandbox": True}))
    assert ours.fileno() == -1 and not returns.fds()
