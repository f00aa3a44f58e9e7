"""Tokens, prompt cache, cost and limiter waits per agent, as /api/agents, JSON /metrics and Prometheus show them."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient

from agent2389.state.usage import TokenUsage, bucket, day_of
from tests.web.conftest import System


def call(system: System, usage: TokenUsage, cost: float, currency: str | None = "USD", agent: str = "echo") -> None:
    """What a worker records for one answered call."""
    system.stats.llm_call(agent, "claude-test", 0.1, usage.input_tokens, usage.output_tokens, ok=True)
    system.stats.llm_usage(agent, "claude-test", usage, cost, currency)


def agent_row(client: FlaskClient, agent: str) -> dict[str, object]:
    rows = client.get("/api/agents").get_json()["agents"]
    return next(row["llm"] for row in rows if row["agent"] == agent)


def test_tokens_cache_and_cost_are_shown_per_agent_for_the_last_hour_and_day(
    client: FlaskClient, system: System
) -> None:
    system.healthy()
    call(system, TokenUsage(100, 40, 0, 900), 0.02)
    call(system, TokenUsage(120, 60, 900, 0), 0.01)
    two_hours_ago = bucket(time.time() - 2 * 3600, 3600)
    system.client.hset(system.keys.llm_usage_window("echo", "day", two_hours_ago),
                       mapping={"calls": 3, "input_tokens": 1000, "cost": 0.5})

    llm = agent_row(client, "echo")

    assert llm["cache_read_tokens"] == 900 and llm["cache_write_tokens"] == 900
    assert llm["cache_hit_ratio"] == pytest.approx(900 / (900 + 900 + 220), abs=1e-4)
    assert llm["cost"] == pytest.approx(0.03) and llm["currency"] == "USD"
    assert llm["last_hour"] == {"calls": 2, "input_tokens": 220, "output_tokens": 100, "cache_read_tokens": 900,
                                "cache_write_tokens": 900, "total_tokens": 2120, "cost": pytest.approx(0.03)}
    assert llm["last_day"]["calls"] == 5 and llm["last_day"]["input_tokens"] == 1220
    assert llm["last_day"]["cost"] == pytest.approx(0.53)
    assert agent_row(client, "writer")["last_day"]["total_tokens"] == 0


def test_an_agent_without_a_price_table_has_no_currency_and_no_cost(client: FlaskClient, system: System) -> None:
    system.healthy()
    call(system, TokenUsage(100, 40), 0.0, currency=None)

    llm = agent_row(client, "echo")

    assert llm["cost"] == 0.0 and "currency" not in llm
    assert llm["cache_hit_ratio"] == 0.0


def test_json_metrics_and_prometheus_count_cache_tokens_cost_and_limiter_waits(
    client: FlaskClient, system: System
) -> None:
    system.healthy()
    call(system, TokenUsage(100, 40, 300, 500), 0.25, "EUR")
    system.stats.llm_wait("echo", 0.5)
    system.stats.llm_wait("echo", 1.5)

    body = client.get("/metrics").get_json()
    text = client.get("/metrics?format=prometheus").get_data(as_text=True)

    model = body["llm"]["models"]["claude-test"]
    assert (model["cache_read_tokens"], model["cache_write_tokens"], model["cost"]) == (300, 500, 0.25)
    assert body["agents"]["echo"]["llm_usage"]["limiter_avg_wait_ms"] == pytest.approx(1000.0)
    assert 'agent2389_llm_cache_read_tokens_total{agent="echo",model="claude-test"} 300.0' in text
    assert 'agent2389_llm_cache_write_tokens_total{agent="echo",model="claude-test"} 500.0' in text
    assert 'agent2389_llm_cost_total{agent="echo",currency="EUR",model="claude-test"} 0.25' in text
    assert 'agent2389_llm_wait_seconds_count{agent="echo"} 2.0' in text
    assert 'agent2389_llm_wait_seconds_sum{agent="echo"} 2.0' in text


def test_the_tokens_counted_against_todays_budget_are_shown(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.client.set(system.keys.llm_daily_tokens("echo", day_of(time.time())), 12345)

    assert agent_row(client, "echo")["tokens_today"] == 12345
    assert agent_row(client, "writer")["tokens_today"] == 0


def test_the_dashboard_shows_tokens_cost_cache_hits_and_limiter_waits_per_agent(
    client: FlaskClient, system: System
) -> None:
    system.healthy()
    call(system, TokenUsage(100, 40, 300, 60), 0.125, "EUR")
    system.stats.llm_wait("echo", 0.25)

    html = client.get("/dashboard/panels").get_data(as_text=True)

    table = html[html.index('<table id="llm">'):]
    row = table[table.index("<td>echo</td>"):table.index("</tr>", table.index("<td>echo</td>"))]
    assert ">500<" in row  # tokens in the last hour and day
    assert "0.1250 EUR" in row
    assert "65.2 %" in row  # 300 cache reads of 460 input tokens (100 uncached, 60 written)
    assert "250.0 ms" in row
