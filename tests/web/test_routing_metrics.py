"""Routing decisions in /metrics, as JSON and for Prometheus (agent2389_routing_*)."""

from flask.testing import FlaskClient

from tests.web.conftest import System
from tests.web.test_prometheus import scrape, value


def record_decisions(system: System) -> None:
    system.healthy()
    system.task("entry", "t1", 0.1)
    system.stats.routing_decision("entry", "llm", "forwarded", 0.2)
    system.stats.routing_decision("entry", "llm", "forwarded", 0.4)
    system.stats.routing_decision("entry", "llm", "capped", 0.0)
    system.stats.routing_decision("entry", "gatekeeper", "failed", 1.0)


def test_routing_decisions_are_counted_by_agent_strategy_and_outcome_for_prometheus(
    client: FlaskClient, system: System
) -> None:
    record_decisions(system)
    samples = scrape(client)
    assert value(samples, "agent2389_routing_decisions_total", agent="entry", strategy="llm",
                 outcome="forwarded") == 2
    assert value(samples, "agent2389_routing_decisions_total", agent="entry", strategy="gatekeeper",
                 outcome="failed") == 1
    assert value(samples, "agent2389_routing_decision_duration_seconds_count", agent="entry", strategy="llm") == 3
    assert abs(value(samples, "agent2389_routing_decision_duration_seconds_sum", agent="entry",
                     strategy="llm") - 0.6) < 1e-9


def test_routing_decisions_are_in_the_json_metrics_overall_and_per_agent(client: FlaskClient, system: System) -> None:
    record_decisions(system)
    document = client.get("/metrics", headers={"Accept": "application/json"}).get_json()
    llm = document["routing"]["by_strategy"]["llm"]
    assert document["routing"]["decisions_total"] == 4
    assert llm == {"decisions": 3, "by_outcome": {"capped": 1, "forwarded": 2}, "avg_decision_ms": 200.0}
    assert document["agents"]["entry"]["routing"]["by_strategy"]["gatekeeper"]["by_outcome"] == {"failed": 1}
