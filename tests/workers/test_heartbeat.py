"""The heartbeat tells Redis what this worker process is doing, the LLM calls it holds back included."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import redis

from agent2389.state.keys import Keys
from agent2389.state.presence import Presence, WorkerInfo
from workers.heartbeat import Heartbeat
from workers.llm.admission import LAG_HIGH_S, Gate, calls_waiting


def test_a_heartbeat_reports_the_llm_calls_waiting_at_this_processs_gates(redis_client: redis.Redis,
                                                                          key_prefix: str) -> None:
    keys = Keys(key_prefix)
    presence = Presence(redis_client, keys)
    info = WorkerInfo(worker_id="w-gate", host="host-1", pid=os.getpid(), agents=["echo"], concurrency=8,
                      started_at=time.time())
    heartbeat = Heartbeat(redis_client, keys, presence, info, 2.0, threading.Event())
    before = calls_waiting()

    async def beat_with_calls_held_back() -> None:
        gate = Gate("llm-test", probe_s=3600)
        for _ in range(8):
            await gate.enter()
        gate.observe(LAG_HIGH_S * 2)  # six may run now; eight do
        held = [asyncio.create_task(gate.enter()) for _ in range(3)]
        await asyncio.sleep(0)
        heartbeat.beat()
        for call in held:
            call.cancel()
        await asyncio.gather(*held, return_exceptions=True)

    asyncio.run(beat_with_calls_held_back())

    [seen] = presence.workers()
    assert seen.llm_waiting == before + 3
    presence.leave("w-gate")
