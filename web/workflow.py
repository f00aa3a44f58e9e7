"""A v2 workflow (PROTOCOL.md §9) as one task's timeline tells it: visits in order, the hops between them.

A workflow keeps its ``task_id`` from agent to agent, so one timeline holds every agent's events. The
routing helper adds a ``routed`` event per hop (``to_agent``, ``reason``, ``strategy``, ``decision_ms``,
``step``) and a ``workflow_complete`` event at the end (``reason``, ``steps``, ``response_bytes``). A
workflow may visit an agent twice, so events are cut into *visits*: a delivery the bridge queued, then
the worker's start, calls, decision and finish. Bridge and workers stamp events when their batch is
written (agent2389.state.stats), up to one batch apart, so a visit is opened by its ``queued`` event and
every later event of that agent joins the oldest of its visits still unfinished.

An agent of another implementation records nothing here: a hop to it has no visit, and the visit it
routes back to has no ``routed`` event in front of it (a hop with ``recorded`` false, from that agent
when the hop before went to it, else from an unknown one).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

FINISHED = ("completed", "failed")


@dataclass
class Visit:
    agent: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return any(e.get("event") in FINISHED for e in self.events)

    @property
    def queued(self) -> bool:
        return any(e.get("event") == "queued" for e in self.events)

    def last(self, name: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e.get("event") == name), None)

    def to_json(self) -> dict[str, Any]:
        finish = next((e for e in reversed(self.events) if e.get("event") in FINISHED), None)
        started = self.last("started")
        return {
            "agent": self.agent,
            "state": finish["event"] if finish else ("started" if started else "queued"),
            "arrived_at": _at(self.events[0]),
            "started_at": _at(started) if started else None,
            "finished_at": _at(finish) if finish else None,
            "duration_ms": finish.get("duration_ms") if finish else None,
            "attempts": sum(1 for e in self.events if e.get("event") == "started"),
            "llm_calls": sum(1 for e in self.events if e.get("event") == "llm_call"),
            "tool_calls": sum(1 for e in self.events if e.get("event") == "tool_call"),
            "error_code": finish.get("error_code") if finish else None,
        }


def is_workflow(events: list[dict[str, Any]]) -> bool:
    return any(e.get("event") in ("routed", "workflow_complete") for e in events)


def workflow(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The workflow in ``events`` (one task's timeline, any order); None when nothing in it was routed."""
    if not is_workflow(events):
        return None
    ordered = sorted(events, key=_at)
    visits = _in_step_order(_visits(ordered))
    hops = _hops(visits)
    done = next((e for e in reversed(ordered) if e.get("event") == "workflow_complete"), None)
    last_finish = max((_at(e) for e in ordered if e.get("event") in FINISHED), default=None)
    return {
        "state": _state(visits, hops, done),
        "entry_agent": visits[0].agent if visits else None,
        "path": [visits[0].agent, *[hop["to_agent"] for hop in hops]] if visits else [],
        "steps": sum(1 for hop in hops if hop["recorded"]),
        "hops": hops,
        "visits": [visit.to_json() for visit in visits],
        "completed_by": str(done.get("agent")) if done else None,
        "complete_reason": done.get("reason") if done else None,
        "response_bytes": done.get("response_bytes") if done else None,
        "duration_ms": round((last_finish - _at(ordered[0])) * 1000, 3) if done and last_finish else None,
    }


def _at(event: dict[str, Any] | None) -> float:
    try:
        return float((event or {}).get("at", 0))
    except (TypeError, ValueError):
        return 0.0


def _visits(ordered: list[dict[str, Any]]) -> list[Visit]:
    visits: list[Visit] = []
    by_agent: dict[str, list[Visit]] = {}
    for event in ordered:
        agent = str(event.get("agent", ""))
        mine = by_agent.setdefault(agent, [])
        if event.get("event") == "queued" and (not mine or mine[-1].queued):
            mine.append(Visit(agent, [event]))
            visits.append(mine[-1])
            continue
        open_visits = [v for v in mine if not v.finished]
        if open_visits:
            open_visits[0].events.append(event)
        elif mine and event.get("event") not in ("started", "llm_call", "tool_call"):
            mine[-1].events.append(event)  # a late routing event or a recovered finish of a finished visit
        else:
            mine.append(Visit(agent, [event]))
            visits.append(mine[-1])
    return visits


def _step(visit: Visit) -> int | None:
    """The workflow's ``iteration_count`` when the visit received it, as its own decision records it."""
    for event in visit.events:
        if event.get("event") == "routed" and isinstance(event.get("step"), int):
            return int(event["step"]) - 1
        if event.get("event") == "workflow_complete" and isinstance(event.get("steps"), int):
            return int(event["steps"]) - 1
    return None


def _in_step_order(visits: list[Visit]) -> list[Visit]:
    """Visits in the order the workflow made them. Their first events' stamps can be a batch apart across
    processes, so a visit that decided is placed by its step; one that has not (in progress, failed) stays
    just after the visit it followed in time."""
    keyed: list[tuple[float, int]] = []
    latest = -1.0
    for index, visit in enumerate(visits):
        step = _step(visit)
        latest = float(step) if step is not None else latest + 0.5
        keyed.append((latest, index))
    return [visits[index] for _, index in sorted(keyed)]


def _hops(visits: list[Visit]) -> list[dict[str, Any]]:
    """One hop per ``routed`` event, each with the visit it led to (if one is recorded), plus a hop from an
    unknown agent in front of every later visit that no recorded hop explains; in the order they happened."""
    hops: list[dict[str, Any]] = []
    for index, visit in enumerate(visits):
        for routed in (e for e in visit.events if e.get("event") == "routed"):
            hops.append({
                "step": routed.get("step"),
                "from_agent": visit.agent,
                "to_agent": str(routed.get("to_agent", "")),
                "reason": routed.get("reason"),
                "strategy": routed.get("strategy"),
                "decision_ms": routed.get("decision_ms"),
                "duration_ms": visit.to_json()["duration_ms"],
                "at": _at(routed),
                "recorded": True,
                "from_visit": index,
                "to_visit": None,
            })
    for index, visit in enumerate(visits[1:], start=1):
        leading = next((h for h in hops if h["recorded"] and h["to_visit"] is None and h["to_agent"] == visit.agent
                        and h["from_visit"] < index), None)
        if leading is not None:
            leading["to_visit"] = index
            continue
        hops.append({"step": None, "from_agent": None, "to_agent": visit.agent, "reason": None, "strategy": None,
                     "decision_ms": None, "duration_ms": None, "at": _at(visit.events[0]), "recorded": False,
                     "from_visit": None, "to_visit": index})
    # A hop leaves the visit it was decided in; one nobody recorded arrives just before the visit it led to.
    hops.sort(key=lambda h: (h["from_visit"] if h["recorded"] else h["to_visit"] - 0.5, h["at"]))
    for previous, hop in itertools.pairwise(hops):
        if not hop["recorded"] and previous["to_visit"] is None:
            hop["from_agent"] = previous["to_agent"]  # the agent that records nothing here sent it back
    return hops


def _state(visits: list[Visit], hops: list[dict[str, Any]], done: dict[str, Any] | None) -> str:
    """``completed`` once the answer went out, ``failed`` when a visit ended in an error (PROTOCOL.md §5 step
    10 ends the workflow), ``forwarded`` when its last hop went to an agent that records nothing here and
    none of ours works on it, else ``running``."""
    if done is not None:
        return "completed"
    if any(visit.last("failed") for visit in visits):
        return "failed"
    if hops and hops[-1]["recorded"] and hops[-1]["to_visit"] is None and all(v.finished for v in visits):
        return "forwarded"
    return "running"
