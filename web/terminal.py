"""Plain-text tables of the inspection data, for ``agent2389 inspect`` and ``agent2389 status``.

Every value comes from Redis, written by processes that quote what agents, tasks and tools said: control
characters are shown escaped (``\\x1b``), never sent, so that text cannot move the cursor, clear the
screen, retitle the window or forge lines in the operator's terminal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from web.health import Check


def shown(value: object) -> str:
    """``value`` as text a terminal displays as it is: non-printable characters escaped."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if v is None else shown(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def age(timestamp: float | None, now: float | None = None) -> str:
    if not timestamp:
        return "never"
    seconds = int((time.time() if now is None else now) - float(timestamp))
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


def workers_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no worker has reported"
    return table(
        ["WORKER", "HOST", "PID", "AGENTS", "ACTIVE", "LLM-WAITING", "PROCESSED", "HEARTBEAT", "STATE"],
        [[w["worker_id"], w["host"], w["pid"], ",".join(w["agents"]), f"{w['active']}/{w['concurrency']}",
          w["llm_calls_waiting"], w["processed"], age(w["last_heartbeat"]),
          ("online" if w["online"] else "offline") + (" not-ready" if w["not_ready"] else "")] for w in rows],
    )


def queues_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no queues"
    return table(["QUEUE", "WAITING", "IN PROGRESS", "CONSUMERS"],
                 [[q["queue"], q["length"], q["in_progress"], q["consumers"]] for q in rows])


def agents_table(rows: list[dict[str, Any]]) -> str:
    """Our agents with their task numbers, then every other agent seen on the broker (``foreign``)."""
    if not rows:
        return "no agents"
    return table(
        ["AGENT", "STATUS", "WORKERS", "QUEUE", "RUNNING", "DONE", "FAILED", "REJECTED", "TASKS/MIN", "ERRORS",
         "LOAD", "SEEN", "CAPABILITIES"],
        [_agent_cells(a) for a in rows],
    )


def _agent_cells(a: dict[str, Any]) -> list[Any]:
    name = f"{a['agent']} (foreign)" if a.get("foreign") else a["agent"]
    seen = age(a.get("last_seen")) if a.get("last_seen") else None
    load = None if a.get("load") is None else f"{a['load']:.2f}"
    advertised = [load, seen, ",".join(a.get("capabilities") or []) or None]
    if a.get("tasks_completed") is None:
        return [name, a["status"], None if a.get("workers") is None else a["workers"], *[None] * 7, *advertised]
    return [name, a["status"], f"{a['workers_ready']}/{a['workers_online']}", a["queue_length"], a["in_progress"],
            a["tasks_completed"], a["tasks_failed"], a["tasks_rejected"], a["throughput_per_minute"],
            f"{a['error_rate'] * 100:.1f}%", *advertised]


def llm_table(rows: list[dict[str, Any]]) -> str:
    """Per agent: what its LLM calls used in the last hour and day, the prompt cache's share of input, and how
    long calls waited for the fleet-wide limits."""
    used = [a["agent"] for a in rows if a["llm"] and (a["llm"]["last_day"]["calls"] or a["llm"]["limiter_waits"])]
    if not used:
        return "no LLM calls in the last day"
    llm = {a["agent"]: a["llm"] for a in rows}
    return table(
        ["AGENT", "CALLS/H", "TOKENS/H", "COST/H", "TOKENS/DAY", "CACHE HITS", "LIMIT WAITS", "AVG WAIT"],
        [[agent, llm[agent]["last_hour"]["calls"], llm[agent]["last_hour"]["total_tokens"],
          f"{llm[agent]['last_hour']['cost']:.4f} {llm[agent].get('currency', '')}".rstrip(),
          llm[agent]["last_day"]["total_tokens"], f"{llm[agent]['cache_hit_ratio'] * 100:.0f}%",
          llm[agent]["limiter_waits"], f"{llm[agent]['limiter_avg_wait_ms']:.0f} ms"] for agent in used],
    )


def tasks_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no tasks"
    return table(
        ["UPDATED", "TASK", "AGENT", "STATE", "WAIT MS", "DURATION MS", "ERROR"],
        [[age(t["updated_at"]), t["task_id"], t["agent"], t["state"],
          None if t["queue_wait_ms"] is None else round(t["queue_wait_ms"]),
          None if t["duration_ms"] is None else round(t["duration_ms"]), t["error_code"]] for t in rows],
    )


def errors_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no failed tasks recently"
    return "\n".join(shown(f"{age(t['updated_at'])}  {t['agent']}  {t['task_id']}  {t['error_code']}"
                           + (f": {t['message']}" if t.get("message") else "")) for t in rows)


def checks_lines(status: str, checks: dict[str, Check]) -> str:
    lines = [f"system: {status}"]
    lines += [f"  {name:<16} {check.status:<10} {shown(check.message)}" for name, check in checks.items()]
    return "\n".join(lines)


def restarts_lines(restarts: dict[str, int]) -> str:
    return "\n".join(f"  {name:<16} restarted {count} time{'s' if count != 1 else ''}"
                     for name, count in restarts.items())
