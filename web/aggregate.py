"""The JSON ``/metrics`` document: the reference agent's shape, added up over the whole system.

``tasks``, ``mqtt``, ``tools`` and ``lifecycle`` keep the field names of the reference agent, so the
runbook's ``jq`` lines work unchanged; ``agents`` breaks the same numbers down per agent, and ``llm``,
``queues``, ``workers`` and ``routing`` add what a distributed deployment has. Times are unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from web.discovery import registry_metrics
from web.routing_metrics import routing_metrics
from web.snapshot import AgentRecord, Snapshot
from web.usage import llm_usage

RECENT_MINUTES = 5


def percentile(sorted_values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks; 0.0 when there is nothing to rank."""
    if not sorted_values:
        return 0.0
    rank = pct / 100 * (len(sorted_values) - 1)
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def task_metrics(records: Iterable[AgentRecord], max_depth: int) -> dict[str, Any]:
    records = list(records)
    completed = sum(r.count("tasks_completed") for r in records)
    failed = sum(r.count("tasks_failed") for r in records)
    finished = completed + failed
    seconds = sum(r.number("duration_seconds_sum") for r in records)
    window = sorted(d for r in records for d in r.durations_ms)
    processing = sum(r.in_flight for r in records)
    return {
        "tasks_received": sum(r.count("tasks_received") for r in records),
        "tasks_processing": processing,
        "tasks_completed": completed,
        "tasks_failed": failed,
        "tasks_rejected": sum(r.count("tasks_rejected") for r in records),
        "tasks_dropped": sum(r.count("tasks_dropped") for r in records),
        "avg_processing_time_ms": round(seconds * 1000 / finished, 3) if finished else 0.0,
        "processing_time_p50_ms": round(percentile(window, 50), 3),
        "processing_time_p95_ms": round(percentile(window, 95), 3),
        "processing_time_p99_ms": round(percentile(window, 99), 3),
        "current_pipeline_depth": processing,
        "max_pipeline_depth_reached": max_depth,
    }


def tool_metrics(records: Iterable[AgentRecord]) -> dict[str, Any]:
    merged: dict[str, dict[str, float]] = {}
    for record in records:
        for tool, raw in record.tools.items():
            into = merged.setdefault(tool, {"executions": 0, "failures": 0, "timeouts": 0, "seconds": 0.0,
                                            "last_execution": 0.0})
            into["executions"] += int(raw.get("executions", 0))
            into["failures"] += int(raw.get("failures", 0))
            into["timeouts"] += int(raw.get("timeouts", 0))
            into["seconds"] += float(raw.get("duration_seconds_sum", 0.0))
            into["last_execution"] = max(into["last_execution"], float(raw.get("last_execution", 0.0)))
    stats = {tool: _tool_entry(tool, values) for tool, values in sorted(merged.items())}
    executions = sum(int(v["executions"]) for v in merged.values())
    seconds = sum(v["seconds"] for v in merged.values())
    return {
        "tool_stats": stats,
        "total_executions": executions,
        "total_failures": sum(int(v["failures"]) for v in merged.values()),
        "total_timeouts": sum(int(v["timeouts"]) for v in merged.values()),
        "avg_execution_time_ms": round(seconds * 1000 / executions, 3) if executions else 0.0,
    }


def _tool_entry(tool: str, values: dict[str, float]) -> dict[str, Any]:
    executions = int(values["executions"])
    return {
        "name": tool,
        "executions": executions,
        "failures": int(values["failures"]),
        "timeouts": int(values["timeouts"]),
        "avg_execution_time_ms": round(values["seconds"] * 1000 / executions, 3) if executions else 0.0,
        "last_execution": int(values["last_execution"]),
        # No calls, no rate: null rather than a made-up 0 or 1.
        "success_rate": round((executions - values["failures"]) / executions, 4) if executions else None,
    }


def llm_metrics(records: Iterable[AgentRecord]) -> dict[str, Any]:
    merged: dict[str, dict[str, float]] = {}
    for record in records:
        for model, raw in record.models.items():
            into = merged.setdefault(model, {"calls": 0, "failures": 0, "input_tokens": 0, "output_tokens": 0,
                                             "cache_read_tokens": 0, "cache_write_tokens": 0, "seconds": 0.0,
                                             "cost": 0.0})
            for name in ("calls", "failures", "input_tokens", "output_tokens", "cache_read_tokens",
                         "cache_write_tokens"):
                into[name] += int(raw.get(name, 0))
            into["seconds"] += float(raw.get("duration_seconds_sum", 0.0))
            into["cost"] += float(raw.get("cost", 0.0))
    models = {
        model: {
            "calls": int(v["calls"]),
            "failures": int(v["failures"]),
            "input_tokens": int(v["input_tokens"]),
            "output_tokens": int(v["output_tokens"]),
            "cache_read_tokens": int(v["cache_read_tokens"]),
            "cache_write_tokens": int(v["cache_write_tokens"]),
            "cost": round(v["cost"], 6),
            "avg_call_time_ms": round(v["seconds"] * 1000 / v["calls"], 3) if v["calls"] else 0.0,
        }
        for model, v in sorted(merged.items())
    }
    return {
        "models": models,
        "total_calls": sum(m["calls"] for m in models.values()),
        "total_input_tokens": sum(m["input_tokens"] for m in models.values()),
        "total_output_tokens": sum(m["output_tokens"] for m in models.values()),
        "total_cache_read_tokens": sum(m["cache_read_tokens"] for m in models.values()),
        "total_cache_write_tokens": sum(m["cache_write_tokens"] for m in models.values()),
        "total_cost": round(sum(m["cost"] for m in models.values()), 6),
    }


def mqtt_metrics(snapshot: Snapshot) -> dict[str, Any]:
    bridge = snapshot.bridge
    connected = bool(bridge and bridge.connected)
    since = bridge.connected_since if bridge and connected else None
    return {
        "connected": connected,
        "subscribed": bool(bridge and bridge.subscribed),
        "connection_attempts": bridge.connection_attempts if bridge else 0,
        "connections_established": bridge.connections_established if bridge else 0,
        "connection_failures": bridge.connection_failures if bridge else 0,
        "messages_published": snapshot.mqtt.get("messages_published", 0),
        "publish_failures": snapshot.mqtt.get("publish_failures", 0),
        "messages_received": bridge.messages_received if bridge else 0,
        "last_heartbeat": int(bridge.last_heartbeat) if bridge else 0,
        "connection_duration_seconds": int(max(0.0, snapshot.taken_at - since)) if since else 0,
    }


def recent(record: AgentRecord, now: float, minutes: int = RECENT_MINUTES) -> tuple[int, int]:
    """Tasks (completed, failed) by this agent in the last ``minutes`` whole minutes and this one."""
    current = int(now // 60)
    window = [record.minutes.get(current - back, {}) for back in range(minutes)]
    return sum(m.get("completed", 0) for m in window), sum(m.get("failed", 0) for m in window)


def agent_metrics(snapshot: Snapshot, record: AgentRecord) -> dict[str, Any]:
    live = [w for w in snapshot.live_workers() if record.agent_id in w.agents]
    completed, failed = recent(record, snapshot.taken_at)
    return {
        "tasks": task_metrics([record], record.count("max_pipeline_depth_reached")),
        "tools": tool_metrics([record]),
        "llm": llm_metrics([record]),
        "llm_usage": llm_usage(record.models, record.stats, record.usage),
        "routing": routing_metrics([record]),
        "queue_length": record.queue_length,
        "workers_online": len(live),
        "max_task_depth": record.count("max_task_depth"),
        "throughput_per_minute": round((completed + failed) / RECENT_MINUTES, 3),
        "rejected_by_reason": {
            name.removeprefix("rejected_"): int(value) for name, value in sorted(record.stats.items())
            if name.startswith("rejected_")
        },
        "failed_by_code": {
            name.removeprefix("failed_"): int(value) for name, value in sorted(record.stats.items())
            if name.startswith("failed_")
        },
    }


def metrics_document(snapshot: Snapshot, lifecycle: dict[str, Any]) -> dict[str, Any]:
    records = list(snapshot.agents.values())
    live = snapshot.live_workers()
    return {
        "tasks": task_metrics(records, int(float(snapshot.system.get("max_pipeline_depth_reached", 0)))),
        "mqtt": mqtt_metrics(snapshot),
        "tools": tool_metrics(records),
        "llm": llm_metrics(records),
        "routing": routing_metrics(records),
        "lifecycle": lifecycle,
        "queues": {r.agent_id: r.queue_length for r in records},
        "workers": {
            "online": len(live),
            "concurrency": sum(w.concurrency for w in live),
            "active": sum(w.active for w in live),
            "processed": sum(w.processed for w in live),
            "llm_calls_waiting": sum(w.llm_waiting for w in live),
        },
        "agents": {r.agent_id: agent_metrics(snapshot, r) for r in records},
        # Restarts of the processes `agent2389 up` supervises, per process name (empty outside `up`).
        "restarts": {"total": sum(snapshot.restarts.values()), "by_process": snapshot.restarts},
        # Every agent seen on the broker, ours and foreign (PROTOCOL.md §8).
        "registry": registry_metrics(snapshot),
        "timestamp": int(snapshot.taken_at),
    }
