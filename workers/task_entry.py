"""Where a delivery enters the worker: find its agent, hand it to workers.processing, say what became of it.

A failure of Redis or a broker is left to the task's retry policy (agent2389/retry.py, workers/tasks.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from agent2389.config.agent import AgentConfig
from agent2389.config.settings import Settings
from agent2389.protocol.errors import ConfigError, MalformedEnvelopeError
from agent2389.state.presence import WorkerInfo
from workers.processing import Deps, Outcome, cancel, describe, process

log = logging.getLogger("agent2389.workers.runtime")

Handling = Callable[[AgentConfig, dict[str, Any], Deps], Outcome | None]


class TaskEntry:
    def __init__(self, settings: Settings, deps: Deps, info: WorkerInfo) -> None:
        self._settings = settings
        self._deps = deps
        self._info = info
        self._processed_lock = threading.Lock()

    def run(self, agent_id: str, wire: dict[str, Any]) -> str:
        """Process one delivery; returns what became of it, for Celery's task events (Flower's result)."""
        return self._handle(agent_id, wire, process)

    def cancel(self, agent_id: str, wire: dict[str, Any]) -> str:
        """End a delivery an operator revoked before it started: its one error, on its conversation topic."""
        return self._handle(agent_id, wire, cancel)

    def _handle(self, agent_id: str, wire: dict[str, Any], handle: Handling) -> str:
        try:
            agent = self._settings.agent(agent_id)
        except ConfigError:
            log.error("received a task for agent %r, which this worker does not serve; dropped", agent_id)
            return "dropped: unknown agent"
        try:
            return describe(handle(agent, wire, self._deps))
        except MalformedEnvelopeError:
            log.error("received a malformed task envelope for %s; dropped", agent_id)
            return "dropped: malformed envelope"
        finally:
            with self._processed_lock:
                self._info.processed += 1
