"""IFileSystemService's confinement, without sockets: which root a path is in (pure), and
what the fd-by-fd walk lets through on a real tree of files, folders and hostile links.

The tree (``tree`` fixture)::

    outside/secret.txt            what no plugin may read
    root/                         the plugin's writable root
        file.txt  sub/inner.txt  fifo  latin1.txt
        link_in -> sub/inner.txt          link_abs_in -> ROOT/file.txt
        up_in -> sub/../file.txt          link_root -> .
        link_out -> ../outside/secret.txt link_abs_out -> OUTSIDE/secret.txt
        link_dir_out -> ../outside        link_slash -> /
        loop_a -> loop_b  loop_b -> loop_a  self_loop -> self_loop
    readonly/a.txt                a read-only root
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spec_kit_runtime.errors import (
    PathRefusedError,
    ServiceError,
    ServiceFileError,
    ServiceFileNotFoundError,
)
from spec_kit_runtime.policy.file_roots import MAX_DEPTH, MAX_PATH_BYTES, Root, locate
from spec_kit_runtime.supervisor.host_services import filesystem
from spec_kit_runtime.supervisor.host_services.filesystem import FileSystem, open_at, resolve

pytestmark = pytest.mark.timeout(10)  # a walk that followed a loop, or a FIFO, would hang

SERVICE, DOCS, NESTED = (Root("/srv/data", True), Root("/srv/docs", False),
                         Root("/srv/data/ro", False))


@pytest.mark.parametrize(("requested", "root", "parts"), [
    ("file.txt", SERVICE, ("file.txt",)),
    ("./sub//inner.txt", SERVICE, ("sub", "inner.txt")),
    ("", SERVICE, ()),
    (".", SERVICE, ()),
    ("sub/", SERVICE, ("sub",)),
    ("/srv/data", SERVICE, ()),
    ("/srv/data/a/b", SERVICE, ("a", "b")),
    ("/srv/docs/spec.md", DOCS, ("spec.md",)),
    ("/srv/data/ro/x", NESTED, ("x",)),  # the deepest root holding the path
    ("/srv/data/rox", SERVICE, ("rox",)),
    ("ro/x", SERVICE, ("ro", "x")),  # relative: always the first root
])
def test_locate_finds_the_root_and_the_components(requested: str, root: Root,
                                                  parts: tuple[str, ...]) -> None:
    assert locate((SERVICE, DOCS, NESTED), requested) == (root, parts)


@pytest.mark.parametrize(("requested", "why"), [
    ("../x", "'..' is not allowed"),
    ("sub/../file.txt", "'..' is not allowed"),  # even one that stays inside
    ("sub/..", "'..' is not allowed"),
    ("/srv/data/../docs/x", "'..' is not allowed"),
    ("/etc/passwd", "outside the plugin's file system roots"),
    ("/srv/database/x", "outside"),  # a prefix of the name is not the folder
    ("/srv", "outside"),
    ("/", "outside"),
    ("a\0b", "NUL"),
    ("a" * (MAX_PATH_BYTES + 1), "at most"),
    ("a/" * (MAX_DEPTH + 1), "folders deep"),
])
def test_locate_refuses(requested: str, why: str) -> None:
    with pytest.raises(PathRefusedError, match=why):
        locate((SERVICE, DOCS, NESTED), requested)


@dataclass
class Tree:
    base: Path
    root: Path
    readonly: Path
    outside: Path
    fs: FileSystem


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    outside, root, readonly = tmp_path / "outside", tmp_path / "root", tmp_path / "readonly"
    for folder in (outside, root / "sub", readonly):
        folder.mkdir(parents=True)
    (outside / "secret.txt").write_text("secret")
    (root / "file.txt").write_text("inside")
    (root / "sub" / "inner.txt").write_text("inner")
    (root / "latin1.txt").write_bytes("café".encode("latin-1"))
    (readonly / "a.txt").write_text("read me")
    os.mkfifo(root / "fifo")
    links = {
        "link_in": "sub/inner.txt", "link_abs_in": str(root / "file.txt"),
        "up_in": "sub/../file.txt", "link_root": ".",
        "link_out": "../outside/secret.txt", "link_abs_out": str(outside / "secret.txt"),
        "link_dir_out": "../outside", "link_slash": "/",
        "loop_a": "loop_b", "loop_b": "loop_a", "self_loop": "self_loop",
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    fs = FileSystem((Root(str(root), True), Root(str(readonly), False)), max_bytes=1024)
    return Tree(tmp_path, root, readonly, outside, fs)


def outcome(tree: Tree, op: str, path: str, *args: Any) -> Any:
    """The result of ``fs.op(path, *args)``, or the class of what it raised."""
    try:
        return getattr(tree.fs, op)(path, *args)
    except ServiceError as exc:
        return type(exc)


@pytest.mark.parametrize(("op", "path", "expected"), [
    ("read_file", "file.txt", "inside"),
    ("read_file", "link_in", "inner"),
    ("read_file", "link_abs_in", "inside"),
    ("read_file", "up_in", "inside"),  # a link's '..' that stays inside is fine
    ("read_file", "link_root/file.txt", "inside"),
    ("read_file", "sub/inner.txt", "inner"),
    ("read_file", "link_out", PathRefusedError),
    ("read_file", "link_abs_out", PathRefusedError),
    ("read_file", "link_dir_out/secret.txt", PathRefusedError),
    ("read_file", "link_slash/etc/passwd", PathRefusedError),
    ("read_file", "loop_a", PathRefusedError),
    ("read_file", "self_loop", PathRefusedError),
    ("read_file", "fifo", ServiceFileError),  # not a regular file: refused, not waited on
    ("read_file", "sub", ServiceFileError),
    ("read_file", "latin1.txt", ServiceFileError),
    ("read_file", "missing", ServiceFileNotFoundError),
    ("read_file", "file.txt/x", ServiceFileError),
    ("exists", "file.txt", True),
    ("exists", "sub", True),
    ("exists", "", True),
    ("exists", "missing", False),
    ("exists", "sub/missing/deeper", False),
    ("exists", "file.txt/x", False),
    ("exists", "link_out", PathRefusedError),
    ("exists", "loop_a", PathRefusedError),
    ("list_directory", "link_dir_out", PathRefusedError),
    ("list_directory", "link_slash", PathRefusedError),
    ("list_directory", "file.txt", ServiceFileError),
    ("list_directory", "missing", ServiceFileNotFoundError),
])
def test_walk_within_the_root(tree: Tree, op: str, path: str, expected: Any) -> None:
    assert outcome(tree, op, path) == expected


def test_absolute_paths_reach_configured_roots_only(tree: Tree) -> None:
    assert tree.fs.read_file(str(tree.root / "file.txt")) == "inside"
    assert tree.fs.read_file(str(tree.readonly / "a.txt")) == "read me"
    for path in (tree.outside / "secret.txt", tree.base, Path("/etc/passwd")):
        assert outcome(tree, "read_file", str(path)) is PathRefusedError


def test_list_directory_joins_the_names_to_the_path_asked(tree: Tree) -> None:
    assert tree.fs.list_directory("sub") == ["sub/inner.txt"]
    assert tree.fs.list_directory("", "*.txt") == ["file.txt", "latin1.txt"]
    assert tree.fs.list_directory("link_root", "f*") == ["link_root/fifo", "link_root/file.txt"]
    absolute = str(tree.readonly)
    assert tree.fs.list_directory(absolute) == [f"{absolute}/a.txt"]
    assert outcome(tree, "list_directory", "sub", "../*") is ServiceError


def test_writes_stay_inside_and_respect_read_only_roots(tree: Tree) -> None:
    tree.fs.write_file("new.txt", "written")
    assert (tree.root / "new.txt").read_text() == "written"
    assert (tree.root / "new.txt").stat().st_mode & 0o777 == 0o600
    tree.fs.write_file("link_in", "through a link inside")  # written where it leads
    assert (tree.root / "sub" / "inner.txt").read_text() == "through a link inside"
    assert (tree.root / "link_in").is_symlink()
    for path in ("link_out", "link_abs_out", "link_dir_out/new.txt", str(tree.readonly / "b")):
        assert outcome(tree, "write_file", path, "x") is PathRefusedError, path
    assert outcome(tree, "write_file", "sub", "x") is ServiceFileError
    assert outcome(tree, "write_file", "nofolder/x.txt", "x") is ServiceFileNotFoundError
    assert (tree.outside / "secret.txt").read_text() == "secret"
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret.txt"]
    assert not [p for p in tree.root.iterdir() if p.name.endswith(".tmp")]


def test_sizes_are_bounded(tree: Tree) -> None:
    assert outcome(tree, "write_file", "big.txt", "x" * 1025) is ServiceFileError
    (tree.root / "big.txt").write_text("x" * 1025)
    assert outcome(tree, "read_file", "big.txt") is ServiceFileError
    tree.fs.write_file("just.txt", "x" * 1024)
    assert tree.fs.read_file("just.txt") == "x" * 1024


def test_create_directory(tree: Tree) -> None:
    tree.fs.create_directory("a/b/c")
    assert (tree.root / "a" / "b" / "c").is_dir()
    assert (tree.root / "a" / "b").stat().st_mode & 0o777 == 0o700
    tree.fs.create_directory("a/b")  # already there: fine
    tree.fs.create_directory("link_root/d", parents=False)
    assert (tree.root / "d").is_dir()
    assert outcome(tree, "create_directory", "x/y", False) is ServiceFileNotFoundError
    assert outcome(tree, "create_directory", "file.txt", True) is ServiceFileError
    assert outcome(tree, "create_directory", "link_dir_out/new", True) is PathRefusedError
    assert outcome(tree, "create_directory", str(tree.readonly / "n"), True) is PathRefusedError
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret.txt"]


def test_delete_removes_links_themselves_never_what_they_lead_to(tree: Tree) -> None:
    tree.fs.delete("link_out")
    assert not (tree.root / "link_out").is_symlink()
    tree.fs.delete("link_dir_out")
    assert (tree.outside / "secret.txt").read_text() == "secret"
    os.symlink("../outside", tree.root / "sub" / "escape")  # inside a folder deleted whole
    tree.fs.delete("sub")
    assert not (tree.root / "sub").exists()
    assert (tree.outside / "secret.txt").read_text() == "secret"
    assert outcome(tree, "delete", "") is PathRefusedError
    assert outcome(tree, "delete", "missing") is ServiceFileNotFoundError
    assert outcome(tree, "delete", str(tree.readonly / "a.txt")) is PathRefusedError
    assert outcome(tree, "delete", "link_slash/etc/passwd") is PathRefusedError


def test_a_root_that_is_a_symbolic_link_is_fixed_when_configured(tree: Tree) -> None:
    from spec_kit_runtime.plugins.config import config_from_data

    link = tree.base / "rootlink"
    os.symlink(tree.root, link)
    config = config_from_data({"plugins": {"p": {"filesystem": [{"path": "rootlink"}]}}},
                              tree.base / "runtime.yaml")
    (root,) = config.settings_for("p").filesystem
    assert root == Root(str(tree.root), False)
    fs = FileSystem((root,), 1024)
    link.unlink()
    os.symlink(tree.outside, link)  # the link now leads elsewhere; the root does not follow
    assert fs.read_file("file.txt") == "inside"
    assert outcome(Tree(tree.base, tree.root, tree.readonly, tree.outside, fs),
                   "read_file", "secret.txt") is ServiceFileNotFoundError


def test_a_root_replaced_by_a_symbolic_link_is_refused(tree: Tree) -> None:
    tree.root.rename(tree.base / "moved")
    os.symlink(tree.outside, tree.root)
    assert outcome(tree, "read_file", "secret.txt") is PathRefusedError
    assert outcome(tree, "exists", "") is PathRefusedError


def test_a_file_swapped_for_a_link_after_the_walk_is_refused(
        tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    real_resolve = filesystem.resolve

    @contextlib.contextmanager
    def swapping(*args: Any, **kwargs: Any) -> Iterator[filesystem.Located]:
        with real_resolve(*args, **kwargs) as at:
            os.symlink(tree.outside / "secret.txt", tree.root / "swap")
            os.replace(tree.root / "swap", tree.root / "file.txt")  # after the walk's checks
            yield at

    monkeypatch.setattr(filesystem, "resolve", swapping)
    with pytest.raises(PathRefusedError, match="became a symbolic link"):
        tree.fs.read_file("file.txt")


def test_a_folder_moved_out_during_the_walk_is_caught(tree: Tree) -> None:
    root = tree.fs.roots[0]
    with resolve(root, ("sub", "inner.txt")) as at:
        (tree.root / "sub").rename(tree.outside / "sub")  # the fd held now lies outside
        with pytest.raises(PathRefusedError, match="moved out of the root"):
            open_at(at, os.O_RDONLY)


def test_the_walk_creates_parents_only_when_asked(tree: Tree) -> None:
    root = tree.fs.roots[0]
    with pytest.raises(FileNotFoundError), resolve(root, ("p", "q", "r")):
        pass
    with resolve(root, ("p", "q", "r"), make_parents=True) as at:
        assert at.name == "r"
    assert (tree.root / "p" / "q").is_dir() and not (tree.root / "p" / "q" / "r").exists()
