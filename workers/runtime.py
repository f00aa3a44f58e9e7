"""Everything one worker process holds: its runners, its MQTT publisher, its heartbeat and its leases.

The heartbeat thread does two jobs every couple of seconds: it tells Redis this worker is alive (and
which agents it can serve), and it renews the lease of every task it holds (agent2389/transport/leases.py),
so the short visibility timeout that recovers a dead worker's tasks quickly never takes a task from a live one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from celery.worker import state as worker_state
from pydantic import ValidationError

from agent2389.config.agent import AgentConfig
from agent2389.config.settings import Settings
from agent2389.protocol.errors import ConfigError, ServiceUnavailableError
from agent2389.protocol.sanitize import environment_secrets, sanitize_error_message
from agent2389.state.keys import Keys, queue_name
from agent2389.state.ledger import TaskLedger
from agent2389.state.presence import Presence, WorkerInfo
from agent2389.state.redis_client import connect_redis
from agent2389.state.registry import AgentRegistry
from agent2389.state.stats import StatsRecorder
from agent2389.transport.leases import renew_leases
from workers.llm import FleetLimits, Runner, build_runner
from workers.processing import Deps, Outcome, cancel, describe, process
from workers.progress import NO_SINK, ProgressSink
from workers.progress_publisher import ProgressPublisher
from workers.publisher import Publisher
from workers.routing import Router

log = logging.getLogger("agent2389.workers.runtime")


class InfrastructureError(Exception):
    """Redis or the broker failed mid-task: the delivery must be handed back, not answered."""


class WorkerRuntime:
    def __init__(self, settings: Settings, concurrency: int) -> None:
        if not settings.agents:
            raise ConfigError("a worker needs at least one agent")
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = connect_redis(settings)
        self.stats = StatsRecorder(self.redis, self.keys, background=True)
        self.ledger = TaskLedger(self.redis, self.keys, ttl_s=settings.dedup_ttl_s)
        self.presence = Presence(self.redis, self.keys, ttl_s=settings.worker_ttl_s)
        self.stopping = threading.Event()
        self.publisher = Publisher(settings.agents[0].mqtt, self.stopping)
        self.router = Router(AgentRegistry(self.redis, self.keys), self.stats)
        self.progress = ProgressPublisher(self.publisher.client, self.publisher.connected, self.stats)
        self.runners: dict[str, Runner] = {}
        self.secrets = environment_secrets(settings.secret_env_names())
        self.info = WorkerInfo(
            worker_id=f"{socket.gethostname()}:{os.getpid()}", host=socket.gethostname(), pid=os.getpid(),
            agents=[a.id for a in settings.agents], concurrency=concurrency, started_at=time.time(),
        )
        self._processed_lock = threading.Lock()
        self._thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self._consumer: Any = None

    def prepare(self) -> list[str]:
        """Build and verify every agent's runner; returns the agents this worker can serve."""
        for agent in self.settings.agents:
            runner = self._verified_runner(agent.id)
            if runner is not None:
                self.runners[agent.id] = runner
        self.publisher.start()
        self.progress.start()
        return list(self.runners)

    def start(self, consumer: Any = None) -> None:
        """Begin the heartbeat, and keep trying the agents that failed verification (``consumer`` takes
        their queues once they pass)."""
        self._consumer = consumer
        self._beat()
        self._thread.start()
        if self.info.not_ready and consumer is not None:
            threading.Thread(target=self._reverify_loop, name="reverify", daemon=True).start()

    def _verified_runner(self, agent_id: str) -> Runner | None:
        runner: Runner | None = None
        try:
            runner = build_runner(self.settings.agent(agent_id), self.stats, FleetLimits(self.redis, self.keys))
            runner.verify()
        except Exception as exc:
            reason = sanitize_error_message(str(exc) or type(exc).__name__, self.secrets)
            self.info.not_ready[agent_id] = reason
            log.error("agent %s cannot be served by this worker: %s", agent_id, reason)
            if runner is not None:
                runner.close()
            return None
        return runner

    def _reverify_loop(self) -> None:
        # An LLM endpoint or a tool that was down when the worker started must not leave its agent
        # unserved until someone restarts the worker.
        while self.info.not_ready and not self.stopping.wait(self.settings.reverify_s):
            for agent_id in list(self.info.not_ready):
                runner = self._verified_runner(agent_id)
                if runner is None:
                    continue
                self.runners[agent_id] = runner
                # Celery's consumer belongs to its event loop thread; call_soon hands the change to it.
                self._consumer.call_soon(self._consumer.add_task_queue, queue_name(agent_id))
                # A new dict, not a deletion: the heartbeat thread may be copying this one right now.
                self.info.not_ready = {a: why for a, why in self.info.not_ready.items() if a != agent_id}
                log.info("agent %s passed verification; this worker serves it now", agent_id)

    def shutdown(self) -> None:
        self.stopping.set()
        # A stop while Celery still retries its first connection comes before the heartbeat started.
        if self._thread.ident is not None:
            self._thread.join(5)
        try:
            self.presence.leave(self.info.worker_id)
        except redis.RedisError:
            log.warning("could not remove this worker's heartbeat; it expires by itself")
        self.progress.stop()
        self.publisher.stop()
        self.router.close()
        self.stats.flush()
        for runner in self.runners.values():
            runner.close()

    def stop_within(self, seconds: float) -> None:
        """Bound a warm shutdown: Celery's waits for every running task, however long it takes."""
        threading.Thread(target=self._hand_back_after, args=(seconds,), name="shutdown-deadline",
                         daemon=True).start()

    def _hand_back_after(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            return
        held = {id(r): r for r in (*worker_state.active_requests, *worker_state.reserved_requests) if r is not None}
        log.warning("still running %d task(s) after %.0f s of shutdown; handing them back to the queue",
                    len(held), seconds)
        for request in held.values():
            try:
                # Straight to Redis: Celery would defer the reject to its event loop, which has stopped.
                request.message.reject(requeue=True)
            except Exception as exc:
                log.warning("could not hand a task back (%s); its lease expires instead", type(exc).__name__)
        try:
            self.presence.leave(self.info.worker_id)
        except redis.RedisError:
            log.warning("could not remove this worker's heartbeat; it expires by itself")
        self.stats.flush()
        # Now, before a task still running here publishes an answer that another worker will publish too.
        os._exit(0)

    def run_task(self, agent_id: str, wire: dict[str, Any]) -> str:
        """Process one delivery; returns what became of it, for Celery's task events (Flower's result)."""
        return self._handle(agent_id, wire, process)

    def cancel_task(self, agent_id: str, wire: dict[str, Any]) -> str:
        """End a delivery an operator revoked before it started: its one error, on its conversation topic."""
        return self._handle(agent_id, wire, cancel)

    def _handle(self, agent_id: str, wire: dict[str, Any],
                handle: Callable[[AgentConfig, dict[str, Any], Deps], Outcome | None]) -> str:
        try:
            agent = self.settings.agent(agent_id)
        except ConfigError:
            log.error("received a task for agent %r, which this worker does not serve; dropped", agent_id)
            return "dropped: unknown agent"
        sink: ProgressSink = self.progress if self.settings.progress_events else NO_SINK
        deps = Deps(self.ledger, self.stats, self.runners, self.publisher.publish, self.secrets, sink,
                    self.router)
        try:
            return describe(handle(agent, wire, deps))
        except ValidationError:
            log.error("received a malformed task envelope for %s; dropped", agent_id)
            return "dropped: malformed envelope"
        except (redis.RedisError, ServiceUnavailableError, OSError) as exc:
            raise InfrastructureError(type(exc).__name__) from exc
        finally:
            with self._processed_lock:
                self.info.processed += 1

    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(self.settings.worker_heartbeat_s):
            self._beat()

    def _beat(self) -> None:
        held = [r for r in (*worker_state.active_requests, *worker_state.reserved_requests) if r is not None]
        self.info.active = len(worker_state.active_requests)
        try:
            self.presence.heartbeat(self.info)
            renew_leases(self.redis, self.keys.celery_prefix(),
                         [r.message.delivery_tag for r in held if getattr(r, "message", None) is not None])
        except redis.RedisError as exc:
            log.warning("heartbeat not written (%s)", type(exc).__name__)
