"""The heartbeat: every couple of seconds this worker tells Redis it is alive, which agents it can serve, and
that it still holds its tasks (their leases, workers/leases.py)."""

from __future__ import annotations

import logging
import threading

import redis
from celery.worker import state as worker_state

from agent2389.state.keys import Keys
from agent2389.state.presence import Presence, WorkerInfo
from workers.leases import renew_held_leases
from workers.llm.admission import calls_waiting

log = logging.getLogger("agent2389.workers.runtime")


class Heartbeat:
    def __init__(self, client: redis.Redis, keys: Keys, presence: Presence, info: WorkerInfo, interval_s: float,
                 stopping: threading.Event) -> None:
        self._redis = client
        self._keys = keys
        self._presence = presence
        self._info = info
        self._interval_s = interval_s
        self._stopping = stopping
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        # A stop while Celery still retries its first connection comes before the heartbeat started.
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    def beat(self) -> None:
        self._info.active = len(worker_state.active_requests)
        self._info.llm_waiting = calls_waiting()
        try:
            self._presence.heartbeat(self._info)
            renew_held_leases(self._redis, self._keys)
        except redis.RedisError as exc:
            log.warning("heartbeat not written (%s)", type(exc).__name__)

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self.beat()
