"""How busy each agent is (PROTOCOL.md §8 ``load``): tasks in progress ÷ worker threads serving it."""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from agent2389.state.keys import Keys
from agent2389.state.presence import WorkerInfo
from agent2389.state.stats import IN_FLIGHT_STALE_S


def tasks_in_progress(client: redis.Redis, keys: Keys, live: Iterable[WorkerInfo]) -> dict[str, int]:
    """Agent id -> tasks started and not finished, counting only those of a worker that still beats."""
    pipe = client.pipeline(transaction=False)
    pipe.zrangebyscore(keys.in_flight(), time.time() - IN_FLIGHT_STALE_S, "+inf")
    pipe.hgetall(keys.in_flight_owners())
    members, owners = pipe.execute()
    beating = {w.worker_id for w in live}
    counts: dict[str, int] = {}
    for raw in members:
        member = _text(raw)
        owner = owners.get(raw)
        # A task whose worker stopped beating waits for another worker: it occupies no thread now.
        if owner is None or _text(owner) in beating:
            agent_id = member.partition(":")[0]
            counts[agent_id] = counts.get(agent_id, 0) + 1
    return counts


def load(in_progress: int, threads: int) -> float:
    """0.0 to 1.0; an agent no thread serves is idle (0.0) unless tasks still count as running (1.0)."""
    if threads <= 0:
        return 1.0 if in_progress else 0.0
    return round(min(1.0, in_progress / threads), 3)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
