"""Open files inside one directory and nowhere else: the jail of ``file_read`` and ``file_write``.

A requested path is refused when it is absolute, contains ``..``, or leads (through symlinks) outside
the root. Symlinks that stay inside the root work. ``open_regular`` opens regular files only: a FIFO
or device is refused before it is opened (opening one can block or have effects), and the open itself
is non-blocking so one swapped in after that check is refused rather than waited on.

The check and the open cannot be raced: after the path is resolved and checked, it is opened one
component at a time relative to the root's file descriptor with ``O_NOFOLLOW``, so a symlink swapped
in between is refused rather than followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

from agent2389.protocol.errors import ToolExecutionError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefusedError(ToolExecutionError):
    """The path is not inside the tool's root."""


class ConfinedRoot:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        resolved = Path(root).resolve()
        if not resolved.is_dir():
            raise ToolExecutionError("config.root must be an existing directory")
        self.root = resolved

    def relative(self, requested: str) -> PurePosixPath:
        """The path, relative to the root with every symlink resolved, that ``requested`` names."""
        if not requested or "\x00" in requested:
            raise PathRefusedError("the path is empty or contains a NUL character")
        path = PurePosixPath(requested)
        if path.is_absolute() or requested.startswith("~"):
            raise PathRefusedError(f"{requested!r} is absolute; paths are relative to the tool's root")
        if ".." in path.parts:
            raise PathRefusedError(f"{requested!r} contains '..'; paths must stay inside the tool's root")
        resolved = Path(os.path.realpath(self.root / path))
        if resolved != self.root and self.root not in resolved.parents:
            raise PathRefusedError(f"{requested!r} leads outside the tool's root (through a symlink)")
        return PurePosixPath(resolved.relative_to(self.root))

    @contextmanager
    def directory(self, relative: PurePosixPath, create: bool = False) -> Iterator[int]:
        """A file descriptor of ``relative`` (a directory under the root), opened without following symlinks."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in relative.parts:
                if create:
                    with suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                fd = _replace(fd, _open_dir(part, fd))
            yield fd
        finally:
            os.close(fd)

    def open(self, relative: PurePosixPath, flags: int, create_dirs: bool = False) -> int:
        """A file descriptor of the file at ``relative``; the last component must not be a symlink either."""
        if not relative.parts:
            raise PathRefusedError("the path names the root directory, not a file")
        with self.directory(relative.parent, create=create_dirs) as parent:
            try:
                return os.open(relative.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent)
            except OSError as exc:
                raise _refusal(exc, relative) from None


    def open_regular(self, relative: PurePosixPath, flags: int, create_dirs: bool = False) -> int:
        """Like :meth:`open`, for a regular file (or a new one, with ``O_CREAT``) and nothing else."""
        if not relative.parts:
            raise PathRefusedError("the path names the root directory, not a file")
        with self.directory(relative.parent, create=create_dirs) as parent:
            self.refuse_special(relative, parent)
            try:
                fd = os.open(relative.name, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=parent)
            except OSError as exc:
                raise _refusal(exc, relative) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ToolExecutionError(f"'{relative}' is not a regular file")
        os.set_blocking(fd, True)
        return fd

    @staticmethod
    def refuse_special(relative: PurePosixPath, parent: int) -> None:
        """Refuse ``relative`` (in the directory ``parent``) if it exists and is not a regular file."""
        try:
            mode = os.stat(relative.name, dir_fd=parent, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _refusal(exc, relative) from None
        if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
            raise ToolExecutionError(f"'{relative}' is not a regular file")


def _open_dir(name: str, parent: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise _refusal(exc, PurePosixPath(name)) from None


def _replace(old: int, new: int) -> int:
    os.close(old)
    return new


def _refusal(exc: OSError, relative: PurePosixPath) -> ToolExecutionError:
    if exc.errno == errno.ELOOP:
        return PathRefusedError(f"'{relative}' is a symlink that changed while it was opened; refused")
    if exc.errno == errno.ENOENT:
        return ToolExecutionError(f"'{relative}' does not exist")
    if exc.errno in (errno.ENOTDIR, errno.EISDIR):
        return ToolExecutionError(f"'{relative}' is not a {'file' if exc.errno == errno.EISDIR else 'directory'}")
    if exc.errno == errno.ENXIO:
        return ToolExecutionError(f"'{relative}' is not a regular file")
    if exc.errno == errno.EACCES:
        return ToolExecutionError(f"permission denied for '{relative}'")
    return ToolExecutionError(f"cannot open '{relative}': {errno.errorcode.get(exc.errno or 0, 'error')}")
