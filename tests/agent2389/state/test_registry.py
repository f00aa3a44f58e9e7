"""The agent registry keeps every agent seen on status topics, in Redis, and knows which are routable."""

from __future__ import annotations

import json
import time

import pytest
import redis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent2389.state.keys import Keys
from agent2389.state.registry import AgentRegistry


def status(agent_id: str, state: str = "available", **extra: object) -> bytes:
    return json.dumps({"agent_id": agent_id, "status": state, "timestamp": "2026-01-01T00:00:00Z", **extra}).encode()


def expiring(seconds: int) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.MessageExpiryInterval = seconds
    return properties


def registry(redis_client: redis.Redis, key_prefix: str) -> AgentRegistry:
    return AgentRegistry(redis_client, Keys(key_prefix))


def test_a_foreign_minimal_status_is_kept_with_defaults_and_is_routable(redis_client: redis.Redis,
                                                                       key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    assert agents.observe("/control/agents/rust-1/status", status("rust-1", capabilities=["search"])) == "stored"
    [record] = agents.agents()
    assert (record.agent_id, record.status, record.capabilities) == ("rust-1", "available", ("search",))
    assert (record.description, record.load, record.workers, record.expires_at) == ("", 0.0, None, None)
    assert record.foreign
    assert time.time() - 5 < record.last_seen <= time.time()
    assert [r.agent_id for r in agents.routable()] == ["rust-1"]


def test_claimed_agents_are_ours_and_carry_their_published_fields(redis_client: redis.Redis, key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    agents.claim(["writer"])
    agents.observe("/control/agents/writer/status",
                   status("writer", description="Writes", capabilities=["prose"], workers=2, load=0.5))
    [record] = agents.agents()
    assert not record.foreign
    assert (record.description, record.capabilities, record.workers, record.load) == ("Writes", ("prose",), 2, 0.5)


def test_unavailable_or_a_cleared_status_removes_the_agent_from_routing(redis_client: redis.Redis,
                                                                        key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    for agent_id in ("a", "b"):
        agents.observe(f"/control/agents/{agent_id}/status", status(agent_id))
    agents.observe("/control/agents/a/status", status("a", "unavailable"))
    assert agents.observe("/control/agents/b/status", b"") == "removed"
    assert agents.routable() == []
    assert [(r.agent_id, r.status) for r in agents.agents()] == [("a", "unavailable")]


def test_the_message_expiry_makes_a_status_stop_being_routable(redis_client: redis.Redis, key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    agents.observe("/control/agents/gone/status", status("gone"), expiring(90))
    [record] = agents.agents()
    assert record.expires_at is not None and abs(record.expires_at - (record.last_seen + 90)) < 0.01
    assert record.routable(record.last_seen + 89) and not record.routable(record.last_seen + 90)
    assert record.state(record.last_seen + 91) == "expired"


def test_without_a_message_expiry_the_fallback_applies(redis_client: redis.Redis, key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    agents.observe("/control/agents/v3/status", status("v3"), None, fallback_expiry_s=0.0)
    assert agents.routable() == []
    assert agents.summary().by_state == {"available": 0, "unavailable": 0, "expired": 1}


def test_payloads_that_are_not_statuses_are_ignored_and_counted(redis_client: redis.Redis, key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    garbage = [b"not json", b"[1]", status("someone-else"), status("x", "busy"), b"{}", b"x" * 70_000]
    outcomes = [agents.observe("/control/agents/x/status", payload) for payload in garbage]
    assert outcomes == ["ignored"] * len(garbage)
    assert agents.observe("/control/agents/x/input", status("x")) == "ignored"
    assert agents.agents() == []
    assert agents.summary().ignored == len(garbage) + 1


def test_fields_of_the_wrong_shape_count_as_absent(redis_client: redis.Redis, key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    agents.observe("/control/agents/odd/status",
                   status("odd", description=7, capabilities="search", load="high", workers=-1))
    [record] = agents.agents()
    assert (record.description, record.capabilities, record.load, record.workers) == ("", (), 0.0, None)
    agents.observe("/control/agents/odd/status", status("odd", load=7.5, capabilities=["a", 3, "a", "b"]))
    [record] = agents.agents()
    assert (record.load, record.capabilities) == (1.0, ("a", "b"))


def test_the_summary_counts_agents_by_state_and_origin(redis_client: redis.Redis, key_prefix: str) -> None:
    agents = registry(redis_client, key_prefix)
    agents.claim(["ours"])
    agents.observe("/control/agents/ours/status", status("ours"))
    agents.observe("/control/agents/theirs/status", status("theirs", "unavailable"))
    summary = agents.summary()
    assert summary.by_state == {"available": 1, "unavailable": 1, "expired": 0}
    assert summary.foreign == 1


def test_a_client_that_returns_bytes_reads_the_same_registry(redis_url: str, key_prefix: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    try:
        agents = AgentRegistry(raw, Keys(key_prefix))
        agents.claim(["ours"])
        agents.observe("/control/agents/ours/status", status("ours", capabilities=["x"]))
        agents.observe("/control/agents/ours/status", b"garbage")
        [record] = agents.agents()
        assert (record.agent_id, record.foreign, record.capabilities) == ("ours", False, ("x",))
        assert agents.summary().ignored == 1
    finally:
        raw.close()


def test_a_registry_with_a_max_age_answers_routable_from_its_last_read_until_it_is_that_old(
        redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = registry(redis_client, key_prefix)
    cached = AgentRegistry(redis_client, Keys(key_prefix), max_age_s=1.0)
    clock = [100.0]
    monkeypatch.setattr("agent2389.state.registry.time.monotonic", lambda: clock[0])
    writer.observe("/control/agents/a/status", status("a"))
    assert [r.agent_id for r in cached.routable()] == ["a"]
    writer.observe("/control/agents/b/status", status("b"))
    clock[0] += 0.9
    assert [r.agent_id for r in cached.routable()] == ["a"]
    clock[0] += 0.2
    assert [r.agent_id for r in cached.routable()] == ["a", "b"]
    assert [r.agent_id for r in writer.routable()] == ["a", "b"], "without a max age every call reads Redis"


def test_a_cached_agent_whose_status_expires_meanwhile_is_not_routable(
        redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = registry(redis_client, key_prefix)
    cached = AgentRegistry(redis_client, Keys(key_prefix), max_age_s=3600.0)
    writer.observe("/control/agents/a/status", status("a"), expiring(30))
    [record] = cached.routable()
    assert record.expires_at is not None
    expired = record.expires_at + 1
    monkeypatch.setattr("agent2389.state.registry.time.time", lambda: expired)
    assert cached.routable() == []
