"""Who is alive: worker heartbeats and the bridge's connection state, kept in Redis.

Workers write a heartbeat every few seconds; a worker whose heartbeat is older than its TTL is gone.
Readers (the bridge deciding availability, the web app) never call Celery ``inspect``, which blocks.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from agent2389.state.keys import Keys


@dataclass
class WorkerInfo:
    worker_id: str
    host: str
    pid: int
    agents: list[str]
    concurrency: int
    started_at: float
    active: int = 0
    processed: int = 0
    last_heartbeat: float = 0.0
    # agent id -> "" when the agent's LLM and tools verified, else why not
    not_ready: dict[str, str] = field(default_factory=dict)
    # this process's resident memory and CPU time, sampled at each heartbeat
    rss_bytes: int = 0
    cpu_seconds: float = 0.0
    # LLM calls held back at this process's event loops (workers/llm/admission.py): more than its CPU serves
    llm_waiting: int = 0

    def serves(self, agent_id: str) -> bool:
        return agent_id in self.agents and agent_id not in self.not_ready


class Presence:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: float = 10.0) -> None:
        self._redis = client
        self._keys = keys
        self.ttl_s = ttl_s

    def heartbeat(self, info: WorkerInfo) -> None:
        info.last_heartbeat = time.time()
        info.rss_bytes, info.cpu_seconds = process_usage()
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._keys.worker(info.worker_id), json.dumps(asdict(info)), ex=int(self.ttl_s * 6))
        pipe.zadd(self._keys.workers(), {info.worker_id: info.last_heartbeat})
        pipe.execute()

    def leave(self, worker_id: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._keys.worker(worker_id))
        pipe.zrem(self._keys.workers(), worker_id)
        pipe.execute()

    def workers(self, include_offline: bool = False) -> list[WorkerInfo]:
        """Workers seen recently; the offline ones (heartbeat older than the TTL) only when asked."""
        now = time.time()
        cutoff = now - self.ttl_s
        self._redis.zremrangebyscore(self._keys.workers(), 0, now - self.ttl_s * 6)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in self._redis.zrange(self._keys.workers(), 0, -1)]
        if not ids:
            return []
        raw = self._redis.mget([self._keys.worker(worker_id) for worker_id in ids])
        found = [WorkerInfo(**json.loads(item)) for item in raw if item]
        return [w for w in found if include_offline or w.last_heartbeat >= cutoff]

    def live_workers(self, agent_id: str) -> list[WorkerInfo]:
        """Live workers that can serve ``agent_id`` (LLM verified, tools initialized)."""
        return [w for w in self.workers() if w.serves(agent_id)]

    def is_online(self, worker: WorkerInfo) -> bool:
        return worker.last_heartbeat >= time.time() - self.ttl_s


@dataclass
class BridgeState:
    """What the bridge reports about its MQTT connection; counters are totals since it started."""

    bridge_id: str = ""
    connected: bool = False
    subscribed: bool = False
    connection_attempts: int = 0
    connections_established: int = 0
    connection_failures: int = 0
    messages_received: int = 0
    connected_since: float | None = None
    started_at: float = field(default_factory=time.time)
    last_heartbeat: float = 0.0
    # agent id -> {"status": "available"|"unavailable", "reason": str, "since": float}
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    rss_bytes: int = 0
    cpu_seconds: float = 0.0
    # the MQTT broker(s) the bridge connects to, as ``mqtt://host:port`` (never with credentials)
    broker: str = ""


def process_usage() -> tuple[int, float]:
    """This process's resident memory in bytes (0 where /proc is missing) and CPU seconds, all threads."""
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = 0
    return rss, time.process_time()


def write_bridge_state(client: redis.Redis, keys: Keys, state: BridgeState, ttl_s: float = 10.0) -> None:
    state.last_heartbeat = time.time()
    state.rss_bytes, state.cpu_seconds = process_usage()
    client.set(keys.bridge(), json.dumps(asdict(state)), ex=max(1, int(ttl_s)))


def read_bridge_state(client: redis.Redis, keys: Keys) -> BridgeState | None:
    """The bridge's last report, or None when no bridge reported within its TTL."""
    raw = client.get(keys.bridge())
    return BridgeState(**json.loads(raw)) if raw else None
