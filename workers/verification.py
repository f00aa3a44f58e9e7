"""Verify each agent's runner (its LLM and its tools) before serving it, and keep trying those that failed.

An LLM endpoint or a tool that was down when the worker started must not leave its agent unserved until
someone restarts the worker: the agents that failed are tried again every ``reverify_s`` seconds, and
Celery's consumer takes their queues once they pass.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

from agent2389.config.settings import Settings
from agent2389.protocol.sanitize import sanitize_error_message
from agent2389.state.keys import Keys, queue_name
from agent2389.state.presence import WorkerInfo
from agent2389.state.stats import StatsRecorder
from workers.llm import FleetLimits, Runner, build_runner

log = logging.getLogger("agent2389.workers.runtime")


class Verifier:
    """Fills ``runners`` with the agents that pass, and ``info.not_ready`` with why the others did not."""

    def __init__(self, settings: Settings, client: redis.Redis, keys: Keys, stats: StatsRecorder,
                 secrets: list[str], info: WorkerInfo, runners: dict[str, Runner]) -> None:
        self._settings = settings
        self._redis = client
        self._keys = keys
        self._stats = stats
        self._secrets = secrets
        self._info = info
        self._runners = runners

    def verify_all(self) -> None:
        for agent in self._settings.agents:
            runner = self._verified_runner(agent.id)
            if runner is not None:
                self._runners[agent.id] = runner

    def keep_trying(self, consumer: Any, stopping: threading.Event) -> None:
        """Retry the agents that failed, in the background, until they pass or ``stopping`` is set."""
        if self._info.not_ready and consumer is not None:
            threading.Thread(target=self._reverify_loop, args=(consumer, stopping), name="reverify",
                             daemon=True).start()

    def _verified_runner(self, agent_id: str) -> Runner | None:
        runner: Runner | None = None
        try:
            runner = build_runner(self._settings.agent(agent_id), self._stats, FleetLimits(self._redis, self._keys))
            runner.verify()
        except Exception as exc:
            reason = sanitize_error_message(str(exc) or type(exc).__name__, self._secrets)
            self._info.not_ready[agent_id] = reason
            log.error("agent %s cannot be served by this worker: %s", agent_id, reason)
            if runner is not None:
                runner.close()
            return None
        return runner

    def _reverify_loop(self, consumer: Any, stopping: threading.Event) -> None:
        while self._info.not_ready and not stopping.wait(self._settings.reverify_s):
            for agent_id in list(self._info.not_ready):
                runner = self._verified_runner(agent_id)
                if runner is None:
                    continue
                self._runners[agent_id] = runner
                # Celery's consumer belongs to its event loop thread; call_soon hands the change to it.
                consumer.call_soon(consumer.add_task_queue, queue_name(agent_id))
                # A new dict, not a deletion: the heartbeat thread may be copying this one right now.
                self._info.not_ready = {a: why for a, why in self._info.not_ready.items() if a != agent_id}
                log.info("agent %s passed verification; this worker serves it now", agent_id)
