"""The agent registry (PROTOCOL.md §8) as the web app, the CLI and Prometheus show it.

Our agents' rows gain what their statuses advertise (capabilities, load, last seen); every other agent seen
on the broker gets a row of its own, marked ``foreign``, whose task numbers are unknown here (None).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agent2389.state.registry import AgentRecord, summarize
from web.snapshot import Snapshot

# What only this deployment's own records can tell about an agent: None in a foreign agent's row.
TASK_FIELDS = ("workers_online", "workers_ready", "queue_length", "in_progress", "tasks_received",
               "tasks_completed", "tasks_failed", "tasks_rejected", "throughput_per_minute", "error_rate",
               "recent_error_rate", "per_minute", "llm")
STATES = ("available", "unavailable", "expired")


def advertised(record: AgentRecord | None, now: float) -> dict[str, Any]:
    """What an agent's latest status says, as inspection fields (nothing seen yet: empty and not routable)."""
    if record is None:
        return {"foreign": False, "description": "", "capabilities": [], "load": None, "last_seen": None,
                "expires_at": None, "routable": False, "advertised_status": None}
    return {
        "foreign": record.foreign,
        "description": record.description,
        "capabilities": list(record.capabilities),
        "load": record.load,
        "last_seen": round(record.last_seen, 3),
        "expires_at": None if record.expires_at is None else round(record.expires_at, 3),
        "routable": record.routable(now),
        "advertised_status": record.state(now),
    }


def with_registry(rows: list[dict[str, Any]], snapshot: Snapshot) -> list[dict[str, Any]]:
    """``rows`` (our agents) with what their statuses advertise, then a row per other agent seen."""
    now = snapshot.taken_at
    seen = {record.agent_id: record for record in snapshot.registry}
    ours = [{**row, **advertised(seen.get(row["agent"]), now)} for row in rows]
    known = {row["agent"] for row in rows}
    others = [_other_row(record, now) for record in snapshot.registry if record.agent_id not in known]
    return ours + others


def _other_row(record: AgentRecord, now: float) -> dict[str, Any]:
    state = record.state(now)
    return {
        "agent": record.agent_id,
        "status": state,
        "status_reason": "another deployment's agent" if record.foreign else "no task recorded yet",
        "expected": False,
        **dict.fromkeys(TASK_FIELDS),
        "workers": record.workers,
        **advertised(record, now),
    }


def registry_metrics(snapshot: Snapshot) -> dict[str, Any]:
    """The ``registry`` part of ``/metrics``: agents by state and origin, non-statuses ignored."""
    summary = summarize(snapshot.registry, snapshot.registry_ignored, snapshot.taken_at)
    return {
        "agents": len(snapshot.registry),
        "by_status": summary.by_state,
        "foreign": summary.foreign,
        "routable": sum(1 for r in snapshot.registry if r.routable(snapshot.taken_at)),
        "ignored_payloads": summary.ignored,
    }


def registry_families(snapshot: Snapshot) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    agents = GaugeMetricFamily("agent2389_registry_agents", "Agents in the registry by advertised status "
                               "(expired: said available, stopped saying so) and origin (ours or foreign)",
                               labels=["status", "origin"])
    counts = {(state, origin): 0 for state in STATES for origin in ("ours", "foreign")}
    for record in snapshot.registry:
        key = (record.state(snapshot.taken_at), "foreign" if record.foreign else "ours")
        counts[key] = counts.get(key, 0) + 1
    for (state, origin), count in counts.items():
        agents.add_metric([state, origin], count)
    yield agents
    yield CounterMetricFamily("agent2389_registry_ignored_payloads", "Payloads on status topics that were not "
                              "agent statuses, ignored", value=snapshot.registry_ignored)
