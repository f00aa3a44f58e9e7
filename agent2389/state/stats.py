"""What bridge and workers record in Redis, so the web app can add it up across every replica.

Each call is one pipelined round trip, or, with ``background=True`` (bridge and workers), is queued and
written together with the calls of other tasks by one thread, so a task waits for no round trip of
stats; the calls of one round trip are merged into few commands (agent2389.state.stats_batch). Recording
never breaks the work it describes: a Redis error here is logged and the numbers are lost, never the
task. What a task's timeline holds is agent2389.state.timeline's; what LLM calls record, llm_stats'.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from agent2389.state.keys import Keys
from agent2389.state.llm_stats import record_llm_call, record_llm_usage, record_llm_wait
from agent2389.state.stats_batch import StatsBatch
from agent2389.state.timeline import TaskEvent, finish_recorded, record_event
from agent2389.state.usage import TokenUsage

# A record of stats and when it was made (time.time()), written later by the background writer.
Record = tuple[float, Callable[[StatsBatch], None]]
log = logging.getLogger("agent2389.stats")

# Upper bounds in seconds of the task duration histogram (Prometheus `le`), the last one is +Inf.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
DURATION_WINDOW = 1000
MINUTE_STATS_TTL_S = 2 * 3600
# A task still marked in flight after this long lost its finish (its worker died after publishing):
# no task runs this long (LLM and tool time-outs times the budget), so it is dropped from the count.
IN_FLIGHT_STALE_S = 3600
# Background recording: how long the writer lets calls gather (stats reach Redis this much later, in
# one round trip for all), the most calls per round trip, and the most kept while Redis is slow. The
# more tasks a round trip carries, the fewer commands each costs (agent2389.state.stats_batch); 50 ms
# rather than 10 ms took 0.1 ms of CPU per task off a busy worker, and no reader needs stats sooner.
BATCH_WAIT_S = 0.05
BATCH_MAX = 500
PENDING_MAX = 100_000

# Fields of an agent's stats hash: "routing:<strategy>:<outcome>" counts, "routing_seconds:<strategy>" sums.
ROUTING_DECISIONS = "routing:"
ROUTING_SECONDS = "routing_seconds:"

def in_flight_member(agent_id: str, task_id: str) -> str:
    return f"{agent_id}:{task_id}"


def bucket_label(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "+Inf"


class StatsRecorder:
    def __init__(self, client: redis.Redis, keys: Keys, background: bool = False, owner: str | None = None) -> None:
        self._redis = client
        self._keys = keys
        # Who runs the tasks this process starts: its worker's heartbeat id (agent2389.state.presence). A task
        # counts as in progress only while that worker beats.
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._pending: queue.SimpleQueue[Record | threading.Event] | None = None
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
        def record(batch: StatsBatch) -> None:
            now = batch.now
            key = self._keys.agent_stats(agent_id)
            batch.incr(key, "tasks_received")
            batch.set_field_once(key, "first_received", now)
            batch.set_field(key, "last_received", now)
            batch.add_member(self._keys.agents_index(), agent_id)
            if task_id is not None:
                record_event(batch, self._keys, task_id, agent_id, TaskEvent.RECEIVED, conversation_id=conversation_id)

        self._run(record)

    def task_rejected(self, agent_id: str, reason: str) -> None:
        def record(batch: StatsBatch) -> None:
            key = self._keys.agent_stats(agent_id)
            batch.incr(key, "tasks_rejected")
            batch.incr(key, f"rejected_{reason}")
            batch.add_member(self._keys.agents_index(), agent_id)

        self._run(record)

    def task_dropped(self, agent_id: str) -> None:
        """A message the bridge dropped on an unexpected failure of its own (never bad input: that is rejected)."""
        def record(batch: StatsBatch) -> None:
            batch.incr(self._keys.agent_stats(agent_id), "tasks_dropped")
            batch.add_member(self._keys.agents_index(), agent_id)

        self._run(record)

    def task_started(self, agent_id: str, task_id: str, conversation_id: str, depth: int) -> None:
        """``depth`` is the task's protocol pipeline depth (1 + nested ``next``); the stats' pipeline
        depth is the number of tasks in flight at once, as the runbook reads it."""

        def record(batch: StatsBatch) -> None:
            now = batch.now
            key = self._keys.agent_stats(agent_id)
            batch.incr(key, "tasks_started")
            batch.set_field(key, "last_started", now)
            batch.add_member(self._keys.agents_index(), agent_id)
            batch.raise_field(key, "max_task_depth", depth)
            batch.in_flight(self._keys.in_flight(), self._keys.system_stats(), now - IN_FLIGHT_STALE_S)
            batch.start(key, f"{agent_id}:", in_flight_member(agent_id, task_id), now)
            batch.set_field(self._keys.in_flight_owners(), in_flight_member(agent_id, task_id), self._owner)
            batch.expire(self._keys.in_flight_owners(), IN_FLIGHT_STALE_S)
            record_event(batch, self._keys, task_id, agent_id, TaskEvent.STARTED, conversation_id=conversation_id,
                         depth=depth)

        self._run(record)

    def task_finished(self, agent_id: str, task_id: str, duration_s: float, error_code: str | None,
                      message: str | None = None) -> None:
        """``message`` is the already sanitized error text, shown in the task's timeline."""

        def record(batch: StatsBatch) -> None:
            now = batch.now
            key = self._keys.agent_stats(agent_id)
            batch.incr(key, "tasks_failed" if error_code else "tasks_completed")
            if error_code:
                batch.incr(key, f"failed_{error_code}")
            batch.incr_float(key, "duration_seconds_sum", duration_s)
            batch.set_field(key, "last_finished", now)
            batch.incr(self._keys.histogram(agent_id), bucket_label(duration_s))
            batch.push_head(self._keys.durations(agent_id), round(duration_s * 1000, 3), keep=DURATION_WINDOW)
            batch.in_flight(self._keys.in_flight(), self._keys.system_stats(), now - IN_FLIGHT_STALE_S)
            batch.finish(key, f"{agent_id}:", in_flight_member(agent_id, task_id))
            batch.delete_field(self._keys.in_flight_owners(), in_flight_member(agent_id, task_id))
            minute = self._keys.minute_stats(agent_id, int(now // 60))
            batch.incr(minute, "failed" if error_code else "completed")
            batch.expire(minute, MINUTE_STATS_TTL_S)
            batch.add_member(self._keys.agents_index(), agent_id)
            state = TaskEvent.FAILED if error_code else TaskEvent.COMPLETED
            record_event(batch, self._keys, task_id, agent_id, state, duration_ms=round(duration_s * 1000, 3),
                         error_code=error_code, message=message)

        self._run(record)

    def task_settled(self, agent_id: str, task_id: str) -> None:
        """A delivery found already answered: the worker that answered it may have died before its stats
        were written. Make the task's record and the in-flight set say it is done. The counters are left
        alone: another live worker's finish may still be on its way, and a task must never count twice."""
        self.flush()  # this process's own finish of the task, if it is still queued here
        try:
            timeline = self._redis.lrange(self._keys.task_timeline(task_id), 0, -1)
        except redis.RedisError as exc:
            log.debug("task timeline not read: %s", type(exc).__name__)
            timeline = []
        recorded = finish_recorded(timeline, agent_id)

        def record(batch: StatsBatch) -> None:
            now = batch.now
            key = self._keys.agent_stats(agent_id)
            batch.in_flight(self._keys.in_flight(), self._keys.system_stats(), now - IN_FLIGHT_STALE_S)
            batch.finish(key, f"{agent_id}:", in_flight_member(agent_id, task_id))
            batch.delete_field(self._keys.in_flight_owners(), in_flight_member(agent_id, task_id))
            if not recorded:
                record_event(batch, self._keys, task_id, agent_id, TaskEvent.COMPLETED, recovered=True)

        self._run(record)

    def tool_call(self, agent_id: str, tool: str, duration_s: float, outcome: str, task_id: str | None = None,
                  error: str | None = None) -> None:
        """``outcome`` is ``ok``, ``failed`` or ``timeout``; with ``task_id`` the call joins the task's
        timeline (``error``: the sanitized reason it failed)."""

        def record(batch: StatsBatch) -> None:
            key = self._keys.tool_stats(agent_id, tool)
            batch.incr(key, "executions")
            if outcome != "ok":
                batch.incr(key, "failures")
            if outcome == "timeout":
                batch.incr(key, "timeouts")
            batch.incr_float(key, "duration_seconds_sum", duration_s)
            batch.set_field(key, "last_execution", batch.now)
            batch.add_member(self._keys.tools_index(agent_id), tool)
            if task_id is not None:
                record_event(batch, self._keys, task_id, agent_id, TaskEvent.TOOL_CALL, tool=tool, outcome=outcome,
                             duration_ms=round(duration_s * 1000, 3), error=error)

        self._run(record)

    def llm_call(self, agent_id: str, model: str, duration_s: float, input_tokens: int, output_tokens: int,
                 ok: bool, task_id: str | None = None, error: str | None = None,
                 **usage: float | None) -> None:
        """``usage`` (cache_read_tokens, cache_write_tokens, cost) only joins the task's timeline event; the
        agent's totals of those are ``llm_usage``'s."""
        self._run(lambda batch: record_llm_call(batch, self._keys, agent_id, model, duration_s, input_tokens,
                                                output_tokens, ok, task_id, error, usage))

    def llm_usage(self, agent_id: str, model: str, usage: TokenUsage, cost: float,
                  currency: str | None = None) -> None:
        """Cache tokens and cost of one successful call (``llm_call`` records calls and plain tokens), and
        all of its usage in the agent's hour and day windows (agent2389.state.usage)."""
        self._run(lambda batch: record_llm_usage(batch, self._keys, agent_id, model, usage, cost, currency))

    def llm_wait(self, agent_id: str, seconds: float) -> None:
        """A call that waited for the fleet-wide limiter (workers/llm/limiter.py) before it could start."""
        self._run(lambda batch: record_llm_wait(batch, self._keys, agent_id, seconds))

    def routing_decision(self, agent_id: str, strategy: str, outcome: str, duration_s: float) -> None:
        """One routing decision of a v2 workflow (workers/routing/router.py), by strategy and outcome."""

        def record(batch: StatsBatch) -> None:
            key = self._keys.agent_stats(agent_id)
            batch.incr(key, f"{ROUTING_DECISIONS}{strategy}:{outcome}")
            batch.incr_float(key, f"{ROUTING_SECONDS}{strategy}", duration_s)
            batch.add_member(self._keys.agents_index(), agent_id)

        self._run(record)

    def mqtt_published(self, count: int = 1, failed: bool = False) -> None:
        field = "publish_failures" if failed else "messages_published"
        self._run(lambda batch: batch.incr(self._keys.mqtt_stats(), field, count))

    def progress_dropped(self, count: int) -> None:
        self._run(lambda batch: batch.incr(self._keys.mqtt_stats(), "progress_events_dropped", count))

    def task_event(self, task_id: str, agent_id: str, event: TaskEvent, **data: Any) -> None:
        self._run(lambda batch: record_event(batch, self._keys, task_id, agent_id, event, **data))

    def _run(self, record: Callable[[StatsBatch], None]) -> None:
        made = (time.time(), record)
        if self._pending is not None:
            if self._pending.qsize() < PENDING_MAX:
                self._pending.put(made)
            return
        self._write([made])

    def _write(self, records: list[Record]) -> None:
        batch = StatsBatch()
        for made_at, record in records:
            batch.now = made_at
            record(batch)
        try:
            pipe = self._redis.pipeline(transaction=False)
            batch.write(pipe)
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

