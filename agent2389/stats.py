"""What bridge and workers record in Redis, so the web app can add it up across every replica.

Each call is one pipelined round trip. Recording never breaks the work it describes: a Redis error
here is logged and the numbers are lost, never the task.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from agent2389.keys import Keys

log = logging.getLogger("agent2389.stats")

# Upper bounds in seconds of the task duration histogram (Prometheus `le`), the last one is +Inf.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
DURATION_WINDOW = 1000
RECENT_TASKS = 1000
TIMELINE_TTL_S = 24 * 3600

_SET_MAX = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""


def bucket_label(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "+Inf"


class StatsRecorder:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._set_max = client.register_script(_SET_MAX)

    def task_received(self, agent_id: str) -> None:
        self._run(lambda p: p.hincrby(self._keys.agent_stats(agent_id), "tasks_received", 1))

    def task_rejected(self, agent_id: str, reason: str) -> None:
        def record(pipe: Any) -> None:
            key = self._keys.agent_stats(agent_id)
            pipe.hincrby(key, "tasks_rejected", 1)
            pipe.hincrby(key, f"rejected_{reason}", 1)

        self._run(record)

    def task_started(self, agent_id: str, task_id: str, conversation_id: str, depth: int) -> None:
        def record(pipe: Any) -> None:
            key = self._keys.agent_stats(agent_id)
            pipe.hincrby(key, "tasks_started", 1)
            pipe.hset(key, "last_started", time.time())
            self._set_max(keys=[key], args=["max_pipeline_depth_reached", depth], client=pipe)
            self._event(pipe, task_id, agent_id, "started", conversation_id=conversation_id, depth=depth)

        self._run(record)

    def task_finished(self, agent_id: str, task_id: str, duration_s: float, error_code: str | None) -> None:
        def record(pipe: Any) -> None:
            key = self._keys.agent_stats(agent_id)
            outcome = "tasks_failed" if error_code else "tasks_completed"
            pipe.hincrby(key, outcome, 1)
            if error_code:
                pipe.hincrby(key, f"failed_{error_code}", 1)
            pipe.hincrbyfloat(key, "duration_seconds_sum", duration_s)
            pipe.hset(key, "last_finished", time.time())
            pipe.hincrby(self._keys.histogram(agent_id), bucket_label(duration_s), 1)
            pipe.lpush(self._keys.durations(agent_id), round(duration_s * 1000, 3))
            pipe.ltrim(self._keys.durations(agent_id), 0, DURATION_WINDOW - 1)
            state = "failed" if error_code else "completed"
            self._event(pipe, task_id, agent_id, state, duration_ms=round(duration_s * 1000, 3), error_code=error_code)

        self._run(record)

    def tool_call(self, agent_id: str, tool: str, duration_s: float, outcome: str) -> None:
        """``outcome`` is ``ok``, ``failed`` or ``timeout``."""

        def record(pipe: Any) -> None:
            key = self._keys.tool_stats(agent_id, tool)
            pipe.hincrby(key, "executions", 1)
            if outcome != "ok":
                pipe.hincrby(key, "failures", 1)
            if outcome == "timeout":
                pipe.hincrby(key, "timeouts", 1)
            pipe.hincrbyfloat(key, "duration_seconds_sum", duration_s)
            pipe.hset(key, "last_execution", time.time())

        self._run(record)

    def llm_call(self, agent_id: str, model: str, duration_s: float, input_tokens: int, output_tokens: int,
                 ok: bool) -> None:
        def record(pipe: Any) -> None:
            key = self._keys.llm_stats(agent_id, model)
            pipe.hincrby(key, "calls", 1)
            if not ok:
                pipe.hincrby(key, "failures", 1)
            pipe.hincrby(key, "input_tokens", input_tokens)
            pipe.hincrby(key, "output_tokens", output_tokens)
            pipe.hincrbyfloat(key, "duration_seconds_sum", duration_s)

        self._run(record)

    def mqtt_published(self, count: int = 1, failed: bool = False) -> None:
        field = "publish_failures" if failed else "messages_published"
        self._run(lambda p: p.hincrby(self._keys.mqtt_stats(), field, count))

    def task_event(self, task_id: str, agent_id: str, event: str, **data: Any) -> None:
        self._run(lambda p: self._event(p, task_id, agent_id, event, **data))

    def _event(self, pipe: Any, task_id: str, agent_id: str, event: str, **data: Any) -> None:
        now = time.time()
        entry = {"event": event, "agent": agent_id, "at": now, **{k: v for k, v in data.items() if v is not None}}
        timeline = self._keys.task_timeline(task_id)
        pipe.rpush(timeline, json.dumps(entry))
        pipe.expire(timeline, TIMELINE_TTL_S)
        pipe.zadd(self._keys.recent_tasks(), {task_id: now})
        pipe.zremrangebyrank(self._keys.recent_tasks(), 0, -RECENT_TASKS - 1)

    def _run(self, record: Any) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            record(pipe)
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("stats not recorded: %s", type(exc).__name__)
