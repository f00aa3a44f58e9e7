"""The worker's side of one tool process: start it, send it calls, and kill it when a call runs too long.

Why processes: a thread cannot be stopped, so a tool stuck in ``while True:`` would hold its worker
thread forever; a process can always be killed. Why ``subprocess`` and a fresh interpreter rather than
``fork``: workers run many threads, and forking a multi-threaded process can deadlock the child on a lock
some other thread held. See docs/tools.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent2389.config.agent import ToolSpec
from agent2389.protocol.errors import ToolExecutionError, ToolTimeoutError

MAX_REPLY_BYTES = 8 * 1024 * 1024
STOP_GRACE_S = 2.0


class ToolProcessDiedError(ToolExecutionError):
    """The tool process ended (crashed, was killed, or broke the reply protocol) during a call."""


@dataclass(frozen=True)
class Reply:
    ok: bool
    result: Any = None
    error: str = ""
    retryable: bool = False


class ToolProcess:
    """One running ``workers.tools.host``; used by one call at a time (the pool sees to that)."""

    def __init__(self, process: subprocess.Popen[bytes], descriptions: dict[str, Any]) -> None:
        self._process = process
        self.descriptions = descriptions
        self._buffer = b""

    @classmethod
    def start(cls, tools: Mapping[str, ToolSpec], secret_env: list[str], startup_timeout_s: float) -> ToolProcess:
        """A process whose tools all initialized; ToolExecutionError says why not."""
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.tools.host"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,  # a Ctrl-C at the worker's terminal is the worker's to handle
        )
        handle = cls(process, {})
        setup = {
            "parent_pid": os.getpid(),
            "sys_path": sys.path,
            "secret_env": secret_env,
            "tools": {name: {"impl": spec.impl, "config": spec.config} for name, spec in tools.items()},
        }
        try:
            handle._write(setup)
            ready = handle._read(time.monotonic() + startup_timeout_s)
        except ToolTimeoutError:
            handle.kill()
            raise ToolExecutionError(f"the tools did not start within {startup_timeout_s:g} s") from None
        except ToolProcessDiedError:
            handle.kill()
            raise ToolExecutionError("the tool process exited while starting") from None
        if not ready.get("ready"):
            handle.kill()
            raise ToolExecutionError(str(ready.get("error") or "the tools failed to initialize"))
        handle.descriptions = dict(ready.get("tools", {}))
        return handle

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def call(self, tool: str, parameters: dict[str, Any], timeout_s: float) -> Reply:
        """The tool's reply; on a time-out the process is killed and ToolTimeoutError raised."""
        deadline = time.monotonic() + timeout_s
        self._write({"tool": tool, "parameters": parameters})
        try:
            message = self._read(deadline)
        except ToolTimeoutError:
            self.kill()
            raise ToolTimeoutError(f"tool {tool!r} did not finish within {timeout_s:g} s and was stopped") from None
        except ToolProcessDiedError:
            self.kill()
            raise
        if message.get("ok"):
            return Reply(ok=True, result=message.get("result"))
        return Reply(ok=False, error=str(message.get("error", "")), retryable=bool(message.get("retryable")))

    def close(self) -> None:
        """Let the tools shut down (stdin closes), then make sure the process is gone."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _write(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message, default=str).encode("utf-8") + b"\n")
        except (BrokenPipeError, OSError, ValueError):
            raise ToolProcessDiedError("the tool process is not running") from None

    def _read(self, deadline: float) -> dict[str, Any]:
        line = self._read_line(deadline)
        try:
            message = json.loads(line)
        except ValueError:
            raise ToolProcessDiedError("the tool process sent a malformed reply") from None
        if not isinstance(message, dict):
            raise ToolProcessDiedError("the tool process sent a malformed reply")
        return message

    def _read_line(self, deadline: float) -> bytes:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        # poll, not select: a busy worker can hold more than select's 1024 file descriptors.
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ToolTimeoutError("timed out")
            if not poller.poll(max(1, int(remaining * 1000))):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ToolProcessDiedError("the tool process exited during the call")
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise ToolProcessDiedError(f"the tool's reply was larger than {MAX_REPLY_BYTES} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line
