"""Flower-style inspection: workers, queues, agents and tasks, as plain JSON-ready data.

The same functions feed ``/api/...``, the dashboard and ``agent2389 inspect``. Task lists and
timelines come from the events bridge and workers record per task (see agent2389.state.timeline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from agent2389.state.keys import Keys, queue_name
from agent2389.state.timeline import FINISHED, LIFECYCLE, TaskEvent
from web.aggregate import RECENT_MINUTES, recent
from web.discovery import with_registry
from web.snapshot import Snapshot
from web.usage import llm_usage
from web.workflow import workflow

# A task's state is its latest lifecycle event; the other events (LLM and tool calls) are steps inside it.
STATES = frozenset(LIFECYCLE)
MAX_LIMIT = 500
_SCAN_BATCH = 100


def workers(snapshot: Snapshot) -> list[dict[str, Any]]:
    rows = []
    for w in sorted(snapshot.workers, key=lambda w: (w.host, w.worker_id)):
        rows.append({
            "worker_id": w.worker_id,
            "host": w.host,
            "pid": w.pid,
            "agents": list(w.agents),
            "queues": [queue_name(agent) for agent in w.agents],
            "concurrency": w.concurrency,
            "active": w.active,
            "processed": w.processed,
            "started_at": int(w.started_at),
            "last_heartbeat": int(w.last_heartbeat),
            "heartbeat_age_seconds": round(max(0.0, snapshot.taken_at - w.last_heartbeat), 1),
            "online": snapshot.is_online(w),
            "not_ready": dict(w.not_ready),
            "rss_bytes": w.rss_bytes,
            "cpu_seconds": round(w.cpu_seconds, 3),
            "llm_calls_waiting": w.llm_waiting,
        })
    return rows


def queues(snapshot: Snapshot) -> list[dict[str, Any]]:
    live = snapshot.live_workers()
    return [
        {
            "agent": r.agent_id,
            "queue": r.queue,
            "length": r.queue_length,
            "in_progress": r.in_flight,
            "consumers": sum(1 for w in live if r.agent_id in w.agents),
        }
        for r in snapshot.agents.values()
    ]


def agents(snapshot: Snapshot) -> list[dict[str, Any]]:
    live = snapshot.live_workers()
    states = snapshot.bridge.agents if snapshot.bridge else {}
    rows = []
    for r in snapshot.agents.values():
        completed, failed = r.count("tasks_completed"), r.count("tasks_failed")
        recent_completed, recent_failed = recent(r, snapshot.taken_at)
        recent_total = recent_completed + recent_failed
        state = states.get(r.agent_id, {})
        rows.append({
            "agent": r.agent_id,
            "status": state.get("status", "unknown"),
            "status_reason": state.get("reason", ""),
            "expected": r.agent_id in snapshot.expected_agents,
            "workers_online": sum(1 for w in live if r.agent_id in w.agents),
            "workers_ready": sum(1 for w in live if w.serves(r.agent_id)),
            "queue_length": r.queue_length,
            "in_progress": r.in_flight,
            "tasks_received": r.count("tasks_received"),
            "tasks_completed": completed,
            "tasks_failed": failed,
            "tasks_rejected": r.count("tasks_rejected"),
            "throughput_per_minute": round(recent_total / RECENT_MINUTES, 3),
            "error_rate": round(failed / (completed + failed), 4) if completed + failed else 0.0,
            "recent_error_rate": round(recent_failed / recent_total, 4) if recent_total else 0.0,
            "per_minute": [
                sum(r.minutes.get(int(snapshot.taken_at // 60) - back, {}).values())
                for back in reversed(range(15))
            ],
            "llm": llm_usage(r.models, r.stats, r.usage),
        })
    return with_registry(rows, snapshot)


@dataclass(frozen=True)
class TaskQuery:
    agent: str | None = None
    state: str | None = None
    limit: int = 50


def summarize(task_id: str, events: list[dict[str, Any]], agent: str | None = None) -> dict[str, Any] | None:
    """One line about a task: where it is and how long each part took.

    A pipeline or workflow keeps its task id from agent to agent, so one timeline holds a hop per agent.
    The line describes ``agent``'s latest hop (None when that agent never saw the task), else the latest
    hop of all.
    """
    ordered = sorted(events, key=lambda e: float(e.get("at", 0)))
    hops: dict[str, list[dict[str, Any]]] = {}
    for event in ordered:
        hops.setdefault(str(event.get("agent", "")), []).append(event)
    if agent is not None and agent not in hops:
        return None
    current = agent if agent is not None else (str(ordered[-1].get("agent", "")) if ordered else "")
    summary = _hop(_latest_visit(hops.get(current, [])))
    return {
        "task_id": task_id,
        "agent": current or None,
        "conversation_id": next((e["conversation_id"] for e in ordered if e.get("conversation_id")), None),
        **summary,
        "pipeline": [{"agent": name, "state": _hop(steps)["state"]} for name, steps in hops.items()],
        "workflow_hops": sum(1 for e in ordered if e.get("event") == "routed"),
        "updated_at": float(ordered[-1]["at"]) if ordered else None,
    }


def _latest_visit(ordered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An agent's events from the bridge's latest delivery of the task on: a v2 workflow (web/workflow.py)
    may visit one agent twice with one task id."""
    queued = [i for i, e in enumerate(ordered) if e.get("event") == "queued"]
    return ordered[queued[-1]:] if queued else ordered


def _hop(ordered: list[dict[str, Any]]) -> dict[str, Any]:
    """Where one agent's part of a task is, when each part of it began and ended, and the work it did."""
    first = {e["event"]: float(e["at"]) for e in reversed(ordered) if "event" in e and "at" in e}
    last = {e["event"]: e for e in ordered if "event" in e}
    state = next((e["event"] for e in reversed(ordered) if e.get("event") in STATES), "unknown")
    finished = last.get(state) if state in FINISHED else None
    arrived = first.get(TaskEvent.RECEIVED, first.get(TaskEvent.QUEUED))
    started = first.get(TaskEvent.STARTED)
    llm_calls = _events(ordered, TaskEvent.LLM_CALL)
    return {
        "state": state,
        "attempts": len(_events(ordered, TaskEvent.STARTED)),
        "received_at": arrived,
        "started_at": float(last[TaskEvent.STARTED]["at"]) if TaskEvent.STARTED in last else None,
        "finished_at": float(finished["at"]) if finished else None,
        "queue_wait_ms": round((started - arrived) * 1000, 3) if arrived and started is not None else None,
        "duration_ms": finished.get("duration_ms") if finished else None,
        "error_code": finished.get("error_code") if finished else None,
        "llm_calls": len(llm_calls),
        **_llm_spent(llm_calls),
        "tool_calls": len(_events(ordered, TaskEvent.TOOL_CALL)),
    }


def _events(ordered: list[dict[str, Any]], kind: TaskEvent) -> list[dict[str, Any]]:
    return [e for e in ordered if e.get("event") == kind]


def _llm_spent(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The hop's LLM tokens (all four kinds) and cost (None when the agent has no price table)."""
    fields = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    costs = [float(e["cost"]) for e in calls if isinstance(e.get("cost"), int | float)]
    return {"llm_tokens": sum(int(e.get(name) or 0) for e in calls for name in fields),
            "llm_cost": round(sum(costs), 8) if costs else None}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(raw: list[Any]) -> list[dict[str, Any]]:
    events = []
    for item in raw:
        try:
            event = json.loads(_text(item))
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def tasks(client: redis.Redis, keys: Keys, query: TaskQuery) -> list[dict[str, Any]]:
    """Most recently active tasks first, filtered by agent and state."""
    found: list[dict[str, Any]] = []
    start = 0
    while len(found) < query.limit:
        ids = [_text(i) for i in client.zrevrange(keys.recent_tasks(), start, start + _SCAN_BATCH - 1)]
        if not ids:
            break
        start += len(ids)
        pipe = client.pipeline(transaction=False)
        for task_id in ids:
            pipe.lrange(keys.task_timeline(task_id), 0, -1)
        for task_id, raw in zip(ids, pipe.execute(), strict=True):
            if not raw:
                continue
            summary = summarize(task_id, _parse(raw), query.agent)
            if summary is None or (query.state and summary["state"] != query.state):
                continue
            found.append(summary)
    return found[: query.limit]


def timeline(client: redis.Redis, keys: Keys, task_id: str) -> dict[str, Any] | None:
    events = _parse(client.lrange(keys.task_timeline(task_id), 0, -1))
    if not events:
        return None
    ordered = sorted(events, key=lambda e: float(e.get("at", 0)))
    origin = float(ordered[0].get("at", 0))
    steps = [{**e, "offset_ms": round((float(e.get("at", origin)) - origin) * 1000, 3)} for e in ordered]
    return {**(summarize(task_id, events) or {}), "workflow": workflow(events), "events": steps}


def last_errors(client: redis.Redis, keys: Keys, limit: int = 5) -> list[dict[str, Any]]:
    failed = tasks(client, keys, TaskQuery(state=TaskEvent.FAILED, limit=limit))
    for task in failed:
        detail = timeline(client, keys, task["task_id"]) or {"events": []}
        messages = [e.get("message") or e.get("error") for e in detail["events"] if e.get("message") or e.get("error")]
        task["message"] = messages[-1] if messages else None
    return failed
