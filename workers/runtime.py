"""Everything one worker process holds: its runners, its MQTT publisher, its heartbeat and its tasks' entry.

The parts have modules of their own: verification.py (each agent's runner, re-verified until it passes),
heartbeat.py and leases.py (alive, and still holding its tasks), task_entry.py (a delivery in, its outcome
out) and shutdown.py (the deadline of a warm shutdown). This one builds them and starts and stops them in order.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import redis

from agent2389.config.settings import Settings
from agent2389.protocol.errors import ConfigError
from agent2389.protocol.sanitize import environment_secrets
from agent2389.state.keys import Keys
from agent2389.state.ledger import TaskLedger
from agent2389.state.presence import Presence, WorkerInfo
from agent2389.state.redis_client import connect_redis
from agent2389.state.registry import AgentRegistry
from agent2389.state.stats import StatsRecorder
from workers import shutdown
from workers.heartbeat import Heartbeat
from workers.llm import Runner
from workers.processing import Deps
from workers.progress import NO_SINK, ProgressSink
from workers.progress_publisher import ProgressPublisher
from workers.publisher import Publisher
from workers.routing import Router
from workers.task_entry import TaskEntry
from workers.verification import Verifier

log = logging.getLogger("agent2389.workers.runtime")
# Routing reads the registry at most once a second (an agent that just left may be chosen meanwhile: its
# task waits in its broker session like any task sent while it is away).
ROUTABLE_MAX_AGE_S = 1.0
# Threads of a worker's own besides its task threads that use Redis: heartbeat, stats writer, verifier,
# routing, Celery's consumer (revocations), with room to spare.
OWN_REDIS_THREADS = 16


class WorkerRuntime:
    def __init__(self, settings: Settings, concurrency: int) -> None:
        if not settings.agents:
            raise ConfigError("a worker needs at least one agent")
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        # A connection for every task thread: on a busy worker a thread holding one waits for the interpreter
        # between its command and the reply, and with fewer connections than threads a fan-in run's tasks
        # waited seconds for one, some long enough to be handed back (docs/performance.md).
        self.redis = connect_redis(settings, max_connections=concurrency + OWN_REDIS_THREADS)
        self.stats = StatsRecorder(self.redis, self.keys, background=True)
        self.ledger = TaskLedger(self.redis, self.keys, ttl_s=settings.dedup_ttl_s)
        self.presence = Presence(self.redis, self.keys, ttl_s=settings.worker_ttl_s)
        self.stopping = threading.Event()
        self.publisher = Publisher(settings.agents[0].mqtt, self.stopping)
        self.router = Router(AgentRegistry(self.redis, self.keys, max_age_s=ROUTABLE_MAX_AGE_S), self.stats)
        self.progress = ProgressPublisher(self.publisher.client, self.publisher.connected, self.stats)
        self.runners: dict[str, Runner] = {}
        self.secrets = environment_secrets(settings.secret_env_names())
        self.info = WorkerInfo(
            worker_id=f"{socket.gethostname()}:{os.getpid()}", host=socket.gethostname(), pid=os.getpid(),
            agents=[a.id for a in settings.agents], concurrency=concurrency, started_at=time.time(),
        )
        self._verifier = Verifier(settings, self.redis, self.keys, self.stats, self.secrets, self.info, self.runners)
        self._heartbeat = Heartbeat(self.redis, self.keys, self.presence, self.info, settings.worker_heartbeat_s,
                                    self.stopping)
        # The runners dict itself: an agent that passes re-verification later is served from it at once.
        sink: ProgressSink = self.progress if settings.progress_events else NO_SINK
        deps = Deps(self.ledger, self.stats, self.runners, self.publisher.publish, self.secrets, sink, self.router)
        self._entry = TaskEntry(settings, deps, self.info)

    def prepare(self) -> list[str]:
        """Build and verify every agent's runner; returns the agents this worker can serve."""
        self._verifier.verify_all()
        self.publisher.start()
        self.progress.start()
        return list(self.runners)

    def start(self, consumer: Any = None) -> None:
        """Begin the heartbeat, and keep trying the agents that failed verification (``consumer`` takes
        their queues once they pass)."""
        self._heartbeat.start()
        self._verifier.keep_trying(consumer, self.stopping)

    def run_task(self, agent_id: str, wire: dict[str, Any]) -> str:
        return self._entry.run(agent_id, wire)

    def cancel_task(self, agent_id: str, wire: dict[str, Any]) -> str:
        return self._entry.cancel(agent_id, wire)

    def stop_within(self, seconds: float) -> None:
        """Bound a warm shutdown: after ``seconds``, hand back what still runs and exit (workers/shutdown.py)."""
        shutdown.stop_within(seconds, self.stopping, self._before_exit)

    def shutdown(self) -> None:
        self.stopping.set()
        self._heartbeat.join(5)
        self._leave()
        self.progress.stop()
        self.publisher.stop()
        self.router.close()
        self.stats.flush()
        for runner in self.runners.values():
            runner.close()

    def _before_exit(self) -> None:
        self._leave()
        self.stats.flush()

    def _leave(self) -> None:
        try:
            self.presence.leave(self.info.worker_id)
        except redis.RedisError:
            log.warning("could not remove this worker's heartbeat; it expires by itself")
