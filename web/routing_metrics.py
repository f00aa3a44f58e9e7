"""Routing decisions (PROTOCOL.md §9) as the JSON ``/metrics`` document and Prometheus show them.

Workers count them in each agent's stats hash (agent2389.state.stats.routing_decision):
``routing:<strategy>:<outcome>`` decisions and ``routing_seconds:<strategy>`` time spent deciding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily

from agent2389.state.stats import ROUTING_DECISIONS, ROUTING_SECONDS
from web.snapshot import AgentRecord, Snapshot


def decisions(record: AgentRecord) -> dict[tuple[str, str], int]:
    """(strategy, outcome) -> decisions of one agent."""
    found = {}
    for name in record.stats:
        if name.startswith(ROUTING_DECISIONS):
            strategy, _, outcome = name.removeprefix(ROUTING_DECISIONS).partition(":")
            found[(strategy, outcome)] = record.count(name)
    return found


def decision_seconds(record: AgentRecord) -> dict[str, float]:
    return {name.removeprefix(ROUTING_SECONDS): record.number(name) for name in record.stats
            if name.startswith(ROUTING_SECONDS)}


def routing_metrics(records: Iterable[AgentRecord]) -> dict[str, Any]:
    """Decisions by strategy and outcome, with their mean duration, added up over ``records``."""
    by_strategy: dict[str, dict[str, Any]] = {}
    for record in records:
        for (strategy, outcome), count in decisions(record).items():
            entry = by_strategy.setdefault(strategy, {"decisions": 0, "by_outcome": {}, "seconds": 0.0})
            entry["decisions"] += count
            entry["by_outcome"][outcome] = entry["by_outcome"].get(outcome, 0) + count
        for strategy, seconds in decision_seconds(record).items():
            by_strategy.setdefault(strategy, {"decisions": 0, "by_outcome": {}, "seconds": 0.0})["seconds"] += seconds
    strategies = {
        strategy: {"decisions": e["decisions"], "by_outcome": dict(sorted(e["by_outcome"].items())),
                   "avg_decision_ms": round(e["seconds"] * 1000 / e["decisions"], 3) if e["decisions"] else 0.0}
        for strategy, e in sorted(by_strategy.items())
    }
    return {"decisions_total": sum(s["decisions"] for s in strategies.values()), "by_strategy": strategies}


def routing_families(snapshot: Snapshot) -> Iterator[CounterMetricFamily | SummaryMetricFamily]:
    total = CounterMetricFamily("agent2389_routing_decisions", "Routing decisions of v2 workflows, by outcome",
                                labels=["agent", "strategy", "outcome"])
    duration = SummaryMetricFamily("agent2389_routing_decision_duration_seconds",
                                   "Time spent deciding where a v2 workflow goes next", labels=["agent", "strategy"])
    for record in snapshot.agents.values():
        counts: dict[str, int] = {}
        for (strategy, outcome), count in sorted(decisions(record).items()):
            total.add_metric([record.agent_id, strategy, outcome], float(count))
            counts[strategy] = counts.get(strategy, 0) + count
        for strategy, seconds in sorted(decision_seconds(record).items()):
            duration.add_metric([record.agent_id, strategy], counts.get(strategy, 0), seconds)
    yield total
    yield duration
