"""The bare Celery baseline: a no-op task on the same Redis, app settings, pool and process count.

``python -m bench.celery_baseline worker PREFIX QUEUE CONCURRENCY`` runs a worker exactly as
``agent2389 worker`` configures one (threads pool, late acks, prefetch 1, no gossip or mingle), with a
task that only notes when it ran; on SIGTERM it prints its count and latencies as JSON on stdout.
``python -m bench.celery_baseline produce PREFIX QUEUE COUNT`` sends COUNT tasks the way the bridge
does (``send_task`` with the envelope as JSON) and prints when it started and finished. Both run on
kombu's own Redis transport unless BENCH_NOOP_TRANSPORT=agent2389.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from agent2389.celery_app import create_celery
from agent2389.config import environment
from agent2389.config.settings import DEFAULT_REDIS_URL, Settings

NOOP_TASK = "bench.noop"
# Which Redis transport the no-op runs on: kombu's own (the bare Celery baseline) or agent2389's.
TRANSPORT_ENV = "BENCH_NOOP_TRANSPORT"
STOCK, AGENT2389 = "kombu", "agent2389"


def app_for(prefix: str) -> Celery:
    redis_url = environment.value(environment.REDIS_URL, DEFAULT_REDIS_URL)
    app = create_celery(Settings(redis_url=redis_url, key_prefix=prefix))
    if os.environ.get(TRANSPORT_ENV, STOCK) == STOCK:
        # Bare Celery is Celery with kombu's own Redis transport: agent2389's transport (parked messages,
        # batch fetch, batched acks, one client per pool) is part of what is measured, not of the baseline.
        app.conf.broker_transport = "redis"
    return app


def run_worker(prefix: str, queue: str, concurrency: int) -> int:
    app = app_for(prefix)
    latencies: list[float] = []
    finished = [0.0]

    @app.task(name=NOOP_TASK)  # type: ignore[untyped-decorator]
    def noop(agent_id: str, wire: dict[str, Any], sent_at: float) -> None:
        now = time.time()
        latencies.append(now - sent_at)
        finished[0] = max(finished[0], now)

    worker_ready.connect(lambda sender, **kwargs: print("ready", flush=True), weak=False)
    worker = app.Worker(
        hostname=f"bench-noop@{socket.gethostname()}-{os.getpid()}", queues=[queue], pool="threads",
        concurrency=concurrency, without_mingle=True, without_gossip=True, without_heartbeat=True,
        optimization="fair", loglevel="WARNING", quiet=True,
    )
    worker.start()
    print(json.dumps({"count": len(latencies), "finished": finished[0],
                      "latencies_ms": [round(v * 1000, 3) for v in latencies]}), flush=True)
    return 0


def envelope(index: int, agent_id: str) -> dict[str, Any]:
    return {"task_id": str(uuid.uuid4()), "conversation_id": f"bench-{index}",
            "topic": f"/control/agents/{agent_id}/input", "instruction": "say", "input": f"#{index}#",
            "next": None}


def produce(prefix: str, queue: str, count: int) -> int:
    app = app_for(prefix)
    agent_id = queue.removeprefix("agent.")
    started = time.time()
    for index in range(count):
        app.send_task(NOOP_TASK, args=[agent_id, envelope(index, agent_id), time.time()], queue=queue,
                      task_id=str(uuid.uuid4()), retry=False)
    print(json.dumps({"started": started, "finished": time.time(), "count": count}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    command, prefix, queue, number = argv
    if command == "worker":
        return run_worker(prefix, queue, int(number))
    if command == "produce":
        return produce(prefix, queue, int(number))
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
