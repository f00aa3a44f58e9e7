"""file_read and file_write stay inside their root: no '..', no absolute paths, no symlink escapes."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from agent2389.errors import ToolExecutionError
from workers.tools.builtins.confined import ConfinedRoot, PathRefusedError
from workers.tools.builtins.files import FileReadTool, FileWriteTool


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "notes").mkdir(parents=True)
    (tmp_path / "root" / "notes" / "today.md").write_text("buy milk")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("the secret")
    return tmp_path / "root"


def reader(root: Path, **config: object) -> FileReadTool:
    tool = FileReadTool()
    tool.initialize({"root": str(root), **config})
    return tool


def writer(root: Path, **config: object) -> FileWriteTool:
    tool = FileWriteTool()
    tool.initialize({"root": str(root), **config})
    return tool


def test_a_file_inside_the_root_is_read(root: Path) -> None:
    assert reader(root).execute({"path": "notes/today.md"}) == "buy milk"


@pytest.mark.parametrize("path", ["../outside/secret.txt", "notes/../../outside/secret.txt", ".."])
def test_a_path_with_dot_dot_is_refused(root: Path, path: str) -> None:
    with pytest.raises(PathRefusedError, match=r"contains '\.\.'"):
        reader(root).execute({"path": path})


@pytest.mark.parametrize("path", ["/etc/passwd", "~/.ssh/id_rsa"])
def test_an_absolute_path_is_refused(root: Path, path: str) -> None:
    with pytest.raises(PathRefusedError, match="is absolute"):
        reader(root).execute({"path": path})


def test_a_symlink_to_a_file_outside_the_root_is_refused(root: Path) -> None:
    (root / "notes" / "link.txt").symlink_to(root.parent / "outside" / "secret.txt")

    with pytest.raises(PathRefusedError, match="leads outside the tool's root"):
        reader(root).execute({"path": "notes/link.txt"})


def test_a_symlinked_directory_that_leaves_the_root_is_refused(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside", target_is_directory=True)

    with pytest.raises(PathRefusedError, match="leads outside"):
        reader(root).execute({"path": "escape/secret.txt"})


def test_a_symlink_that_stays_inside_the_root_works(root: Path) -> None:
    (root / "latest.md").symlink_to(root / "notes" / "today.md")

    assert reader(root).execute({"path": "latest.md"}) == "buy milk"


def test_a_symlink_swapped_in_after_the_check_is_not_followed(root: Path) -> None:
    confined = ConfinedRoot(root)
    checked = confined.relative("notes/today.md")
    (root / "notes" / "today.md").unlink()
    (root / "notes" / "today.md").symlink_to(root.parent / "outside" / "secret.txt")

    with pytest.raises(PathRefusedError, match="symlink"):
        confined.open(checked, os.O_RDONLY)


def test_a_file_larger_than_the_cap_is_refused(root: Path) -> None:
    (root / "big.txt").write_text("x" * 101)

    with pytest.raises(ToolExecutionError, match="larger than the 100 bytes"):
        reader(root, max_bytes=100).execute({"path": "big.txt"})


@pytest.mark.parametrize(("path", "message"), [("missing.md", "does not exist"), ("notes", "not a regular file")])
def test_what_cannot_be_read_is_said_plainly(root: Path, path: str, message: str) -> None:
    with pytest.raises(ToolExecutionError, match=message):
        reader(root).execute({"path": path})


def test_a_binary_file_is_refused(root: Path) -> None:
    (root / "image.bin").write_bytes(b"\xff\xfe\x00\x81")

    with pytest.raises(ToolExecutionError, match="not UTF-8 text"):
        reader(root).execute({"path": "image.bin"})


def test_a_file_is_written_with_its_directories_and_no_temporary_file_is_left(root: Path) -> None:
    result = writer(root).execute({"path": "reports/2026/summary.md", "content": "all good"})

    assert result == "wrote 8 bytes to 'reports/2026/summary.md'"
    assert (root / "reports" / "2026" / "summary.md").read_text() == "all good"
    assert os.listdir(root / "reports" / "2026") == ["summary.md"]


def test_appending_adds_to_the_end(root: Path) -> None:
    writer(root).execute({"path": "notes/today.md", "content": ", eggs", "append": True})

    assert (root / "notes" / "today.md").read_text() == "buy milk, eggs"


def test_writing_through_a_symlink_that_leaves_the_root_is_refused(root: Path) -> None:
    (root / "notes" / "trap.txt").symlink_to(root.parent / "outside" / "secret.txt")

    for append in (False, True):
        with pytest.raises(PathRefusedError, match="leads outside"):
            writer(root).execute({"path": "notes/trap.txt", "content": "overwritten", "append": append})

    assert (root.parent / "outside" / "secret.txt").read_text() == "the secret"


def test_writing_more_than_the_cap_is_refused(root: Path) -> None:
    with pytest.raises(ToolExecutionError, match="larger than the 10 bytes"):
        writer(root, max_bytes=10).execute({"path": "a.txt", "content": "x" * 11})
    with pytest.raises(ToolExecutionError, match="would grow past the 10 bytes"):
        writer(root, max_bytes=10).execute({"path": "notes/today.md", "content": "xxx", "append": True})

    assert not (root / "a.txt").exists()


def test_a_root_that_is_missing_or_not_given_fails_initialization(tmp_path: Path) -> None:
    with pytest.raises(ToolExecutionError, match=r"config\.root must be an existing directory"):
        reader(tmp_path / "nope")
    with pytest.raises(ToolExecutionError, match=r"config\.root is required"):
        FileWriteTool().initialize({})


def test_the_checked_path_is_relative_to_the_resolved_root(root: Path) -> None:
    assert ConfinedRoot(root).relative("notes/./today.md") == PurePosixPath("notes/today.md")


def test_a_missing_root_is_created_when_the_config_asks_for_it(tmp_path: Path) -> None:
    writer(tmp_path / "new" / "root", create_root=True).execute({"path": "a.txt", "content": "x"})

    assert (tmp_path / "new" / "root" / "a.txt").read_text() == "x"
