"""Health of the whole system, judged from one snapshot: is it serving, and if not, what is wrong.

Each check says ``healthy``, ``degraded``, ``stale`` or ``unhealthy`` with a message for people.
Overall: any ``unhealthy`` check makes the system unhealthy, anything else not healthy degrades it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent2389.addresses import redacted
from agent2389.protocol.sanitize import sanitize_error_message
from web.snapshot import Snapshot

HEALTHY, DEGRADED, STALE, UNHEALTHY = "healthy", "degraded", "stale", "unhealthy"
STALE_AFTER_S = 300.0


@dataclass(frozen=True)
class Check:
    status: str
    message: str
    last_check: int
    details: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "message": self.message, "last_check": self.last_check}
        if self.details is not None:
            body.update(self.details)
        return body


def overall(checks: dict[str, Check]) -> str:
    statuses = {check.status for check in checks.values()}
    if UNHEALTHY in statuses:
        return UNHEALTHY
    return HEALTHY if statuses <= {HEALTHY} else DEGRADED


def evaluate(snapshot: Snapshot, redis_ms: float, addresses: bool = False) -> dict[str, Check]:
    """``addresses``: name the broker the bridge cannot reach (for operators' own terminals, not for the
    unauthenticated ``/health``)."""
    now = int(snapshot.taken_at)
    return {
        "mqtt": mqtt_check(snapshot, now, addresses),
        "redis": Check(HEALTHY, f"Redis answered in {redis_ms:.1f} ms", now, {"latency_ms": round(redis_ms, 3)}),
        "workers": workers_check(snapshot, now),
        "llm": llm_check(snapshot, now),
        "task_processing": task_processing_check(snapshot, now),
    }


def redis_down(error: BaseException, now: float, redis_url: str | None = None) -> dict[str, Check]:
    """Without Redis nothing else can be known: every check says so, none pretends. ``redis_url`` (for
    operators' own terminals) says where Redis was looked for, without its password."""
    reason = f"Redis did not answer ({type(error).__name__}: {sanitize_error_message(str(error))})"
    if redis_url is not None:
        reason += f" at {redacted(redis_url)}"
    unknown = "unknown while Redis is unreachable"
    stamp = int(now)
    return {
        "mqtt": Check(UNHEALTHY, unknown, stamp),
        "redis": Check(UNHEALTHY, reason, stamp),
        "workers": Check(UNHEALTHY, unknown, stamp),
        "llm": Check(UNHEALTHY, unknown, stamp),
        "task_processing": Check(UNHEALTHY, unknown, stamp),
    }


def mqtt_check(snapshot: Snapshot, now: int, addresses: bool = False) -> Check:
    bridge = snapshot.bridge
    if bridge is None:
        problem = snapshot.bridge_problem or "no bridge has reported recently: is `agent2389 bridge` running?"
        return Check(UNHEALTHY, problem, now)
    details = {"connected": bridge.connected, "subscribed": bridge.subscribed}
    if not bridge.connected:
        broker = f" at {bridge.broker}" if addresses and bridge.broker else ""
        return Check(UNHEALTHY, f"the bridge is not connected to the MQTT broker{broker} "
                                f"({bridge.connection_failures} failed connection attempts)", now, details)
    if not bridge.subscribed:
        return Check(DEGRADED, "the bridge is connected but not yet subscribed to the agents' input topics",
                     now, details)
    since = bridge.connected_since or snapshot.taken_at
    return Check(HEALTHY, f"MQTT connection established {int(snapshot.taken_at - since)} s ago", now, details)


def workers_check(snapshot: Snapshot, now: int) -> Check:
    live = snapshot.live_workers()
    per_agent = {agent: sum(1 for w in live if agent in w.agents) for agent in snapshot.expected_agents}
    details = {"online": len(live), "agents": per_agent}
    if not snapshot.expected_agents:
        if live:
            return Check(HEALTHY, f"{len(live)} worker(s) online", now, details)
        return Check(UNHEALTHY, "no worker is online and no agent is configured", now, details)
    missing = sorted(agent for agent, count in per_agent.items() if count == 0)
    summary = ", ".join(f"{agent}: {count}" for agent, count in per_agent.items())
    if not missing:
        return Check(HEALTHY, f"live workers per agent: {summary}", now, details)
    status = UNHEALTHY if len(missing) == len(per_agent) else DEGRADED
    return Check(status, f"no live worker for {', '.join(missing)} (live workers per agent: {summary})",
                 now, details)


def llm_check(snapshot: Snapshot, now: int) -> Check:
    """Workers verify each agent's LLM (and tools) before taking its tasks; the result rides on
    their heartbeats, so this is the latest verification, at most one heartbeat old."""
    live = snapshot.live_workers()
    verified: dict[str, bool] = {}
    problems: list[str] = []
    for agent in snapshot.expected_agents:
        serving = [w for w in live if agent in w.agents]
        verified[agent] = any(w.serves(agent) for w in serving)
        if not serving:
            problems.append(f"{agent}: not verified (no live worker)")
        elif not verified[agent]:
            reason = serving[0].not_ready.get(agent) or "verification failed"
            problems.append(f"{agent}: {sanitize_error_message(reason)}")
    details = {"verified": verified}
    if not problems:
        count = len(verified)
        return Check(HEALTHY, f"LLM verified for {count} agent(s)" if count else "no agent to verify", now, details)
    status = UNHEALTHY if not any(verified.values()) else DEGRADED
    return Check(status, "; ".join(problems), now, details)


def task_processing_check(snapshot: Snapshot, now: int) -> Check:
    """Stale when work is waiting and nothing started or finished for five minutes."""
    records = list(snapshot.agents.values())
    waiting = sum(r.queue_length + r.in_flight for r in records)
    activity = max((max(r.number("last_started"), r.number("last_finished")) for r in records), default=0.0)
    first_received = min((r.number("first_received") for r in records if r.number("first_received")), default=0.0)
    details: dict[str, Any] = {"waiting": waiting, "last_activity": int(activity)}
    if waiting == 0:
        message = "no tasks waiting" if activity else "no tasks processed yet: ready"
        return Check(HEALTHY, message, now, details)
    reference = activity or first_received or snapshot.taken_at
    idle = snapshot.taken_at - reference
    if idle > STALE_AFTER_S:
        what = "since the last task activity" if activity else "and no task was ever started"
        return Check(STALE, f"{waiting} task(s) waiting, nothing started or finished for {int(idle)} s ({what})",
                     now, details)
    return Check(HEALTHY, f"{waiting} task(s) waiting or in progress; last activity {int(idle)} s ago", now, details)


def readiness(snapshot: Snapshot) -> tuple[bool, list[str]]:
    """Ready to take tasks: the bridge is connected and subscribed, every agent has a worker and is routable
    in the agent registry (so a v2 workflow sent at once can be routed to any of them, PROTOCOL.md §9)."""
    reasons: list[str] = []
    bridge = snapshot.bridge
    if bridge is None or not bridge.connected:
        reasons.append("the bridge is not connected to the MQTT broker")
    elif not bridge.subscribed:
        reasons.append("the bridge is not subscribed yet")
    live = snapshot.live_workers()
    routable = {record.agent_id for record in snapshot.registry if record.routable(snapshot.taken_at)}
    for agent in snapshot.expected_agents:
        if not any(w.serves(agent) for w in live):
            reasons.append(f"no ready worker for {agent}")
        elif agent not in routable:
            reasons.append(f"{agent} is not yet announced available")
    if not snapshot.expected_agents and not live:
        reasons.append("no worker is online")
    return not reasons, reasons
