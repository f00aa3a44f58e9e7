"""What bridge and workers record in Redis, so the web app can add it up across every replica.

Each call is one pipelined round trip, or, with ``background=True`` (bridge and workers), is queued and
written together with the calls of other tasks by one thread, so a task waits for no round trip of
stats. Recording never breaks the work it describes: a Redis error here is logged and the numbers are
lost, never the task.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from agent2389.keys import Keys

log = logging.getLogger("agent2389.stats")

# Upper bounds in seconds of the task duration histogram (Prometheus `le`), the last one is +Inf.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
DURATION_WINDOW = 1000
RECENT_TASKS = 1000
TIMELINE_TTL_S = 24 * 3600
MINUTE_STATS_TTL_S = 2 * 3600
# A task still marked in flight after this long lost its finish (its worker died after publishing):
# no task runs this long (LLM and tool time-outs times the budget), so it is dropped from the count.
IN_FLIGHT_STALE_S = 3600
# Background recording: how long the writer lets calls gather (stats reach Redis this much later, in
# one round trip for all), the most calls per round trip, and the most kept while Redis is slow.
BATCH_WAIT_S = 0.01
BATCH_MAX = 500
PENDING_MAX = 100_000

_SET_MAX = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""

# Marks a task in flight and keeps the highest number of tasks ever in flight at once, per agent
# and for the whole system, in one step so concurrent workers cannot miss a peak.
_START = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local total = redis.call('ZCARD', KEYS[1])
local agent = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, string.len(ARGV[4])) == ARGV[4] then agent = agent + 1 end
end
local function raise(key, value)
  if value > tonumber(redis.call('HGET', key, 'max_pipeline_depth_reached') or '0') then
    redis.call('HSET', key, 'max_pipeline_depth_reached', value)
  end
end
raise(KEYS[2], agent)
raise(KEYS[3], total)
return total
"""


def in_flight_member(agent_id: str, task_id: str) -> str:
    return f"{agent_id}:{task_id}"


def bucket_label(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "+Inf"


class StatsRecorder:
    def __init__(self, client: redis.Redis, keys: Keys, background: bool = False) -> None:
        self._redis = client
        self._keys = keys
        self._set_max = client.register_script(_SET_MAX)
        self._start = client.register_script(_START)
        self._pending: queue.SimpleQueue[Callable[[Any], None] | threading.Event] | None = None
        if background:
            self._pending = queue.SimpleQueue()
            threading.Thread(target=self._write_forever, name="stats", daemon=True).start()

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Wait until every call made so far is written (or failed); True unless ``timeout_s`` passed."""
        if self._pending is None:
            return True
        written = threading.Event()
        self._pending.put(written)
        return written.wait(timeout_s)

    def task_received(self, agent_id: str, task_id: str | None = None, conversation_id: str | None = None) -> None:
        def record(pipe: Any) -> None:
            key = self._keys.agent_stats(agent_id)
            pipe.hincrby(key, "tasks_received", 1)
            pipe.hsetnx(key, "first_received", time.time())
            pipe.hset(key, "last_received", time.time())
            pipe.sadd(self._keys.agents_index(), agent_id)
            if task_id is not None:
                self._event(pipe, task_id, agent_id, "received", conversation_id=conversation_id)

        self._run(record)

    def task_rejected(self, agent_id: str, reason: str) -> None:
        def record(pipe: Any) -> None:
            key = self._keys.agent_stats(agent_id)
            pipe.hincrby(key, "tasks_rejected", 1)
            pipe.hincrby(key, f"rejected_{reason}", 1)
            pipe.sadd(self._keys.agents_index(), agent_id)

        self._run(record)

    def task_started(self, agent_id: str, task_id: str, conversation_id: str, depth: int) -> None:
        """``depth`` is the task's protocol pipeline depth (1 + nested ``next``); the stats' pipeline
        depth is the number of tasks in flight at once, as the runbook reads it."""

        def record(pipe: Any) -> None:
            now = time.time()
            key = self._keys.agent_stats(agent_id)
            pipe.hincrby(key, "tasks_started", 1)
            pipe.hset(key, "last_started", now)
            pipe.sadd(self._keys.agents_index(), agent_id)
            self._set_max(keys=[key], args=["max_task_depth", depth], client=pipe)
            self._start(keys=[self._keys.in_flight(), key, self._keys.system_stats()],
                        args=[in_flight_member(agent_id, task_id), now, now - IN_FLIGHT_STALE_S, f"{agent_id}:"],
                        client=pipe)
            self._event(pipe, task_id, agent_id, "started", conversation_id=conversation_id, depth=depth)

        self._run(record)

    def task_finished(self, agent_id: str, task_id: str, duration_s: float, error_code: str | None,
                      message: str | None = None) -> None:
        """``message`` is the already sanitized error text, shown in the task's timeline."""

        def record(pipe: Any) -> None:
            now = time.time()
            key = self._keys.agent_stats(agent_id)
            outcome = "tasks_failed" if error_code else "tasks_completed"
            pipe.hincrby(key, outcome, 1)
            if error_code:
                pipe.hincrby(key, f"failed_{error_code}", 1)
            pipe.hincrbyfloat(key, "duration_seconds_sum", duration_s)
            pipe.hset(key, "last_finished", now)
            pipe.hincrby(self._keys.histogram(agent_id), bucket_label(duration_s), 1)
            pipe.lpush(self._keys.durations(agent_id), round(duration_s * 1000, 3))
            pipe.ltrim(self._keys.durations(agent_id), 0, DURATION_WINDOW - 1)
            pipe.zrem(self._keys.in_flight(), in_flight_member(agent_id, task_id))
            minute = self._keys.minute_stats(agent_id, int(now // 60))
            pipe.hincrby(minute, "failed" if error_code else "completed", 1)
            pipe.expire(minute, MINUTE_STATS_TTL_S)
            pipe.sadd(self._keys.agents_index(), agent_id)
            state = "failed" if error_code else "completed"
            self._event(pipe, task_id, agent_id, state, duration_ms=round(duration_s * 1000, 3), error_code=error_code,
                        message=message)

        self._run(record)

    def tool_call(self, agent_id: str, tool: str, duration_s: float, outcome: str, task_id: str | None = None,
                  error: str | None = None) -> None:
        """``outcome`` is ``ok``, ``failed`` or ``timeout``; with ``task_id`` the call joins the task's
        timeline (``error``: the sanitized reason it failed)."""

        def record(pipe: Any) -> None:
            key = self._keys.tool_stats(agent_id, tool)
            pipe.hincrby(key, "executions", 1)
            if outcome != "ok":
                pipe.hincrby(key, "failures", 1)
            if outcome == "timeout":
                pipe.hincrby(key, "timeouts", 1)
            pipe.hincrbyfloat(key, "duration_seconds_sum", duration_s)
            pipe.hset(key, "last_execution", time.time())
            pipe.sadd(self._keys.tools_index(agent_id), tool)
            if task_id is not None:
                self._event(pipe, task_id, agent_id, "tool_call", tool=tool, outcome=outcome,
                            duration_ms=round(duration_s * 1000, 3), error=error)

        self._run(record)

    def llm_call(self, agent_id: str, model: str, duration_s: float, input_tokens: int, output_tokens: int,
                 ok: bool, task_id: str | None = None, error: str | None = None) -> None:
        def record(pipe: Any) -> None:
            key = self._keys.llm_stats(agent_id, model)
            pipe.hincrby(key, "calls", 1)
            if not ok:
                pipe.hincrby(key, "failures", 1)
            pipe.hincrby(key, "input_tokens", input_tokens)
            pipe.hincrby(key, "output_tokens", output_tokens)
            pipe.hincrbyfloat(key, "duration_seconds_sum", duration_s)
            pipe.hset(key, "last_call", time.time())
            pipe.sadd(self._keys.models_index(agent_id), model)
            if task_id is not None:
                self._event(pipe, task_id, agent_id, "llm_call", model=model, ok=ok,
                            duration_ms=round(duration_s * 1000, 3), input_tokens=input_tokens,
                            output_tokens=output_tokens, error=error)

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
        if self._pending is not None:
            if self._pending.qsize() < PENDING_MAX:
                self._pending.put(record)
            return
        self._write([record])

    def _write(self, records: list[Callable[[Any], None]]) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for record in records:
                record(pipe)
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("stats not recorded: %s", type(exc).__name__)

    def _write_forever(self) -> None:
        assert self._pending is not None
        while True:
            batch = [self._pending.get()]
            if not isinstance(batch[0], threading.Event):
                time.sleep(BATCH_WAIT_S)
            while len(batch) < BATCH_MAX and not self._pending.empty():
                batch.append(self._pending.get())
            records = [item for item in batch if not isinstance(item, threading.Event)]
            if records:
                try:
                    self._write(records)
                except Exception:
                    log.exception("stats not recorded")
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
