"""Where a delivery enters the worker: find its agent, hand it to workers.processing, say what became of it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
from pydantic import ValidationError

from agent2389.config.agent import AgentConfig
from agent2389.config.settings import Settings
from agent2389.protocol.errors import ConfigError, ServiceUnavailableError
from agent2389.state.presence import WorkerInfo
from workers.processing import Deps, Outcome, cancel, describe, process

log = logging.getLogger("agent2389.workers.runtime")

Handling = Callable[[AgentConfig, dict[str, Any], Deps], Outcome | None]


class InfrastructureError(Exception):
    """Redis or the broker failed mid-task: the delivery must be handed back, not answered."""


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
        except ValidationError:
            log.error("received a malformed task envelope for %s; dropped", agent_id)
            return "dropped: malformed envelope"
        except (redis.RedisError, ServiceUnavailableError, OSError) as exc:
            raise InfrastructureError(type(exc).__name__) from exc
        finally:
            with self._processed_lock:
                self._info.processed += 1
