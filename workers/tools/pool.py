"""An agent's tool processes: started on demand up to a limit, reused between calls, replaced when killed.

Every process holds all of the agent's tools, initialized once. A call takes an idle process (or starts
one), and gives it back afterwards unless the call timed out or the process died, in which case the
process is gone and a fresh one is started the next time one is needed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from agent2389.config.agent import ToolSpec
from agent2389.protocol.errors import RetryableToolError
from workers.tools.process import Reply, ToolProcess

log = logging.getLogger("agent2389.tools.pool")
DEFAULT_MAX_PROCESSES = 4
DEFAULT_STARTUP_TIMEOUT_S = 60.0


class ToolPool:
    def __init__(
        self,
        tools: Mapping[str, ToolSpec],
        secret_env: list[str] | None = None,
        max_processes: int = DEFAULT_MAX_PROCESSES,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
    ) -> None:
        self._tools = dict(tools)
        self._secret_env = list(secret_env or [])
        self._max = max_processes
        self._startup_timeout_s = startup_timeout_s
        self._idle: list[ToolProcess] = []
        self._live = 0
        self._closed = False
        self._changed = threading.Condition()

    def start(self) -> dict[str, Any]:
        """Start the first process (all tools initialized) and return the tools' descriptions."""
        process = self._acquire(time.monotonic() + self._startup_timeout_s)
        self._release(process)
        return process.descriptions

    def call(self, tool: str, parameters: dict[str, Any], timeout_s: float) -> Reply:
        # Waiting for a free process is bounded: every busy process finishes or is killed within its timeout.
        longest = max((spec.timeout_s for spec in self._tools.values()), default=timeout_s)
        process = self._acquire(time.monotonic() + longest + self._startup_timeout_s)
        try:
            reply = process.call(tool, parameters, timeout_s)
        except BaseException:
            self._discard(process)
            raise
        self._release(process)
        return reply

    def pids(self) -> list[int]:
        """The process ids of idle tool processes (for tests and diagnostics)."""
        with self._changed:
            return [process.pid for process in self._idle]

    def stop_idle(self) -> None:
        """Stop the processes not in use; new ones start when needed (after a failed start, say)."""
        with self._changed:
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._changed.notify_all()
        for process in idle:
            process.close()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._changed.notify_all()
        for process in idle:
            process.close()

    def _acquire(self, deadline: float) -> ToolProcess:
        with self._changed:
            while True:
                if self._closed:
                    raise RetryableToolError("the agent's tools are shutting down")
                while self._idle:
                    process = self._idle.pop()
                    if process.alive():
                        return process
                    self._live -= 1
                if self._live < self._max:
                    self._live += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RetryableToolError("every tool process is busy; try again later")
                self._changed.wait(remaining)
        try:
            return ToolProcess.start(self._tools, self._secret_env, self._startup_timeout_s)
        except BaseException:
            with self._changed:
                self._live -= 1
                self._changed.notify()
            raise

    def _release(self, process: ToolProcess) -> None:
        with self._changed:
            if not self._closed:
                self._idle.append(process)
                self._changed.notify()
                return
            self._live -= 1
        process.close()

    def _discard(self, process: ToolProcess) -> None:
        process.kill()
        with self._changed:
            self._live -= 1
            self._changed.notify()
        log.info("tool process %s stopped; a new one starts when needed", process.pid)
