"""What a worker process builds around its task threads, before it serves anything."""

from __future__ import annotations

from agent2389.config.agent import AgentConfig
from agent2389.config.settings import Settings
from workers.runtime import WorkerRuntime

AGENT = AgentConfig.model_validate({"agent": {"id": "a"}, "llm": {"provider": "echo"}})


def test_a_worker_keeps_a_redis_connection_for_every_task_thread(redis_url: str, key_prefix: str) -> None:
    threads = 500
    runtime = WorkerRuntime(Settings(agents=(AGENT,), redis_url=redis_url, key_prefix=key_prefix), threads)
    try:
        # With fewer, task threads waited seconds for a connection while other threads held theirs (fan-in).
        assert runtime.redis.connection_pool.max_connections > threads
    finally:
        runtime.shutdown()
