"""The ``file_read`` and ``file_write`` builtins: UTF-8 text files under a configured ``root`` only.

Config (:class:`agent2389.config.agent.FileToolConfig`): ``root`` (required: an existing directory, or one
``create_root = true`` creates; a relative root is relative to the worker's working directory) and
``max_bytes`` (1 MiB by default); ``file_write`` also takes ``create_dirs`` (true) and the root's quotas
``max_files``, ``max_depth`` and ``max_total_bytes`` (see :mod:`quota`). Paths are relative to the root;
see :mod:`confined` for what is refused. Only regular files are read or appended to: a FIFO or a device
in the root would block the tool until its time-out, or worse.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from agent2389.config.agent import FileToolConfig
from agent2389.protocol.errors import ToolExecutionError
from workers.tools.builtins.confined import ConfinedRoot
from workers.tools.builtins.quota import Quota

DEFAULT_MAX_BYTES = FileToolConfig().max_bytes


def _config(config: Mapping[str, Any]) -> FileToolConfig:
    try:
        return FileToolConfig.model_validate(dict(config))
    except ValidationError as exc:
        problems = "; ".join(f"config.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ToolExecutionError(problems) from None


def _root(config: FileToolConfig) -> ConfinedRoot:
    if not config.root:
        raise ToolExecutionError("config.root is required: the directory the tool may use")
    if config.create_root:
        try:
            os.makedirs(config.root, exist_ok=True)
        except OSError as exc:
            raise ToolExecutionError(f"config.root cannot be created ({exc.strerror})") from None
    return ConfinedRoot(config.root)


class FileReadTool:
    def __init__(self) -> None:
        self._root: ConfinedRoot | None = None
        self._max_bytes = DEFAULT_MAX_BYTES

    def describe(self) -> dict[str, Any]:
        return {
            "name": "file_read",
            "description": "Read a UTF-8 text file from the agent's data directory. Paths are relative to "
                           f"that directory; files larger than {self._max_bytes} bytes are refused.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Relative path, e.g. notes/today.md"}},
                "required": ["path"],
                "additionalProperties": False,
            },
        }

    def initialize(self, config: Mapping[str, Any]) -> None:
        parsed = _config(config)
        self._root = _root(parsed)
        self._max_bytes = parsed.max_bytes

    def execute(self, parameters: dict[str, Any]) -> str:
        assert self._root is not None, "initialize() was not called"
        relative = self._root.relative(str(parameters["path"]))
        fd = self._root.open_regular(relative, os.O_RDONLY)
        with os.fdopen(fd, "rb") as file:
            data = file.read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise ToolExecutionError(f"'{relative}' is larger than the {self._max_bytes} bytes this tool reads")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolExecutionError(f"'{relative}' is not UTF-8 text") from None


class FileWriteTool:
    def __init__(self) -> None:
        self._root: ConfinedRoot | None = None
        self._max_bytes = DEFAULT_MAX_BYTES
        self._create_dirs = True
        self._quota = Quota.of(FileToolConfig())

    def describe(self) -> dict[str, Any]:
        return {
            "name": "file_write",
            "description": "Write (or append to) a UTF-8 text file in the agent's data directory. Paths are "
                           f"relative to that directory; at most {self._max_bytes} bytes per file.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Relative path, e.g. reports/summary.md"},
                    "content": {"type": "string"},
                    "append": {"type": "boolean", "default": False},
                },
                "required": ["path", "content"],
                "additionalProperties": False,
            },
        }

    def initialize(self, config: Mapping[str, Any]) -> None:
        parsed = _config(config)
        self._root = _root(parsed)
        self._max_bytes = parsed.max_bytes
        self._create_dirs = parsed.create_dirs
        self._quota = Quota.of(parsed)

    def execute(self, parameters: dict[str, Any]) -> str:
        assert self._root is not None, "initialize() was not called"
        relative = self._root.relative(str(parameters["path"]))
        data = str(parameters["content"]).encode("utf-8")
        append = bool(parameters.get("append"))
        if not append and len(data) > self._max_bytes:
            raise ToolExecutionError(f"the content is larger than the {self._max_bytes} bytes this tool writes")
        self._quota.check_write(self._root.root, relative, len(data), append)
        if append:
            return self._append(relative, data)
        try:
            self._replace(relative, data)
        except OSError as exc:
            raise ToolExecutionError(f"cannot write '{relative}': {exc.strerror or type(exc).__name__}") from None
        return f"wrote {len(data)} bytes to '{relative}'"

    def _replace(self, relative: PurePosixPath, data: bytes) -> None:
        """Write a temporary file and rename it over the target, so readers never see half a file."""
        assert self._root is not None
        if not relative.parts:
            raise ToolExecutionError("the path names the root directory, not a file")
        with self._root.directory(relative.parent, create=self._create_dirs) as parent:
            self._root.refuse_special(relative, parent)
            temporary = f".{relative.name}.{secrets.token_hex(6)}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=parent)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(temporary, relative.name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                os.unlink(temporary, dir_fd=parent)
                raise

    def _append(self, relative: PurePosixPath, data: bytes) -> str:
        assert self._root is not None
        fd = self._root.open_regular(relative, os.O_WRONLY | os.O_APPEND | os.O_CREAT, create_dirs=self._create_dirs)
        with os.fdopen(fd, "ab") as file:
            if os.fstat(file.fileno()).st_size + len(data) > self._max_bytes:
                raise ToolExecutionError(f"'{relative}' would grow past the {self._max_bytes} bytes this tool writes")
            file.write(data)
        return f"appended {len(data)} bytes to '{relative}'"
