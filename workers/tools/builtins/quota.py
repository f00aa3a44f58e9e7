"""How much a file tool's root may hold: files and directories, nesting depth, bytes.

Without these a model can fill the disk, or build a tree so deep that cleaning it up fails (2,000 nested
folders make ``shutil.rmtree`` hit RecursionError). The root is measured on every write that could grow
it, by an iterative walk that follows no symlink and stops counting once the limit is passed. Writers in
separate processes are not serialised, so concurrent writes can overshoot a quota by what they add
together; the next write is refused.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent2389.config.agent import FileToolConfig
from agent2389.protocol.errors import ToolExecutionError


class QuotaExceededError(ToolExecutionError):
    """The write would take the root past one of its quotas."""


@dataclass(frozen=True)
class Usage:
    entries: int
    total_bytes: int


@dataclass(frozen=True)
class Quota:
    max_files: int
    max_depth: int
    max_total_bytes: int

    @classmethod
    def of(cls, config: FileToolConfig) -> Quota:
        return cls(config.max_files, config.max_depth, config.max_total_bytes)

    def check_depth(self, relative: PurePosixPath) -> None:
        if len(relative.parts) > self.max_depth:
            raise QuotaExceededError(f"'{relative}' is {len(relative.parts)} levels deep; this tool's root allows "
                                     f"{self.max_depth} (config max_depth)")

    def check_write(self, root: Path, relative: PurePosixPath, new_size: int, append: bool) -> None:
        """Refuse a write of ``new_size`` bytes to ``relative`` that would pass any quota."""
        self.check_depth(relative)
        used = measure(root, stop_after=self.max_files + 1)
        created = missing_components(root, relative)
        if created and used.entries + created > self.max_files:
            raise QuotaExceededError(f"the root holds {used.entries} files and directories; this write would "
                                     f"pass the {self.max_files} it may hold (config max_files)")
        replaced = 0 if append else existing_size(root / relative)
        if used.total_bytes - replaced + new_size > self.max_total_bytes:
            raise QuotaExceededError(f"the root holds {used.total_bytes} bytes; this write would pass the "
                                     f"{self.max_total_bytes} it may hold (config max_total_bytes)")


def measure(root: Path, stop_after: int) -> Usage:
    """Entries under ``root`` and the bytes of its regular files, without recursion or following symlinks."""
    entries = total = 0
    pending = [str(root)]
    while pending and entries < stop_after:
        try:
            listing = os.scandir(pending.pop())
        except OSError:
            continue  # removed or made unreadable meanwhile: nothing to count there
        with listing:
            for entry in listing:
                entries += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
                elif stat.S_ISREG(info.st_mode):
                    total += info.st_size
    return Usage(entries, total)


def missing_components(root: Path, relative: PurePosixPath) -> int:
    """How many of the directories and the file of ``relative`` a write would create."""
    for index in range(len(relative.parts)):
        if not os.path.lexists(root.joinpath(*relative.parts[: index + 1])):
            return len(relative.parts) - index
    return 0


def existing_size(path: Path) -> int:
    try:
        info = path.lstat()
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0
