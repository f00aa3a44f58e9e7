"""file_read and file_write stay inside their root (no '..', no absolute paths, no symlink escapes), touch
regular files only, and keep the root within its quotas."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

import pytest

from agent2389.protocol.errors import ToolExecutionError
from workers.tools.builtins.confined import ConfinedRoot, PathRefusedError
from workers.tools.builtins.files import FileReadTool, FileWriteTool
from workers.tools.builtins.quota import QuotaExceededError, Usage, measure


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


@pytest.mark.parametrize("append", [False, True])
def test_a_fifo_in_the_root_is_refused_at_once_instead_of_blocking_until_the_time_out(root: Path,
                                                                                      append: bool) -> None:
    os.mkfifo(root / "pipe")

    with pytest.raises(ToolExecutionError, match="'pipe' is not a regular file"):
        if append:
            writer(root).execute({"path": "pipe", "content": "x", "append": True})
        else:
            reader(root).execute({"path": "pipe"})


def test_a_socket_or_a_fifo_is_not_replaced_by_a_write_either(root: Path) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolExecutionError, match="not a regular file"):
        writer(root).execute({"path": "pipe", "content": "x"})
    assert (root / "pipe").is_fifo()


def test_a_device_in_the_root_is_refused(root: Path) -> None:
    try:
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("this process may not create device nodes (no CAP_MKNOD)")
    for tool_call in (lambda: reader(root).execute({"path": "null"}),
                      lambda: writer(root).execute({"path": "null", "content": "x", "append": True})):
        with pytest.raises(ToolExecutionError, match="not a regular file"):
            tool_call()


def test_a_path_deeper_than_max_depth_is_refused_and_nothing_is_created(root: Path) -> None:
    with pytest.raises(QuotaExceededError, match=r"6 levels deep; this tool's root allows 5 \(config max_depth\)"):
        writer(root, max_depth=5).execute({"path": "a/b/c/d/e/f.txt", "content": "x"})
    assert not (root / "a").exists()
    assert writer(root, max_depth=5).execute({"path": "a/b/c/d/e.txt", "content": "x"}).startswith("wrote")


def test_the_default_depth_stops_a_model_from_nesting_two_thousand_folders(root: Path) -> None:
    with pytest.raises(QuotaExceededError, match="config max_depth"):
        writer(root).execute({"path": "/".join(["d"] * 2000) + "/f.txt", "content": "x"})
    assert not (root / "d").exists()


def test_the_number_of_files_and_directories_under_the_root_is_capped(root: Path) -> None:
    # The root already holds notes/ and notes/today.md.
    tool = writer(root, max_files=4)
    tool.execute({"path": "one.txt", "content": "1"})
    with pytest.raises(QuotaExceededError, match=r"holds 3 files and directories; .* 4 it may hold"):
        tool.execute({"path": "new/two.txt", "content": "2"})
    tool.execute({"path": "two.txt", "content": "2"})
    with pytest.raises(QuotaExceededError, match="config max_files"):
        tool.execute({"path": "three.txt", "content": "3"})
    assert tool.execute({"path": "one.txt", "content": "replaced"}).startswith("wrote"), "replacing adds nothing"
    assert tool.execute({"path": "one.txt", "content": "+", "append": True}).startswith("appended")
    assert sorted(p.name for p in root.rglob("*")) == ["notes", "one.txt", "today.md", "two.txt"]


def test_the_bytes_of_all_files_under_the_root_are_capped(root: Path) -> None:
    tool = writer(root, max_total_bytes=30)  # notes/today.md holds 8
    tool.execute({"path": "a.txt", "content": "x" * 20})
    with pytest.raises(QuotaExceededError, match=r"holds 28 bytes; .* 30 it may hold \(config max_total_bytes\)"):
        tool.execute({"path": "b.txt", "content": "xxx"})
    with pytest.raises(QuotaExceededError, match="config max_total_bytes"):
        tool.execute({"path": "a.txt", "content": "xxx", "append": True})
    assert tool.execute({"path": "a.txt", "content": "y" * 22}).startswith("wrote"), "a replaced file's bytes go"
    assert (root / "a.txt").read_text() == "y" * 22 and not (root / "b.txt").exists()


def test_measuring_a_root_follows_no_symlink_out_of_it(root: Path) -> None:
    (root.parent / "outside" / "big.txt").write_text("x" * 1000)
    (root / "link").symlink_to(root.parent / "outside", target_is_directory=True)
    assert measure(root, stop_after=100) == Usage(entries=3, total_bytes=8)


@pytest.mark.parametrize(("config", "message"), [
    ({"max_files": 0}, r"config\.max_files: Input should be greater than or equal to 1"),
    ({"max_depth": "deep"}, r"config\.max_depth: Input should be a valid integer"),
    ({"max_total_bytes": -1}, r"config\.max_total_bytes"),
    ({"max_file": 10}, r"config\.max_file: Extra inputs are not permitted"),
])
def test_a_bad_quota_is_a_clear_error_at_start_up(root: Path, config: dict[str, object], message: str) -> None:
    with pytest.raises(ToolExecutionError, match=message):
        writer(root, **config)
