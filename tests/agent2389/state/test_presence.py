import json
import time

import pytest
import redis

from agent2389.state.keys import Keys
from agent2389.state.presence import BridgeState, Presence, WorkerInfo, read_bridge_state, write_bridge_state


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def presence(redis_client: redis.Redis, keys: Keys) -> Presence:
    return Presence(redis_client, keys, ttl_s=10.0)


def worker(worker_id: str, agents: list[str], active: int = 0, processed: int = 0,
           not_ready: dict[str, str] | None = None) -> WorkerInfo:
    return WorkerInfo(worker_id=worker_id, host="host-1", pid=4242, agents=agents, concurrency=4,
                      started_at=time.time(), active=active, processed=processed, not_ready=not_ready or {})


def test_a_heartbeat_makes_a_worker_visible_with_everything_it_reported(presence: Presence) -> None:
    presence.heartbeat(worker("w1", ["a", "b"], active=2, processed=7))
    [seen] = presence.workers()
    assert (seen.worker_id, seen.host, seen.pid, seen.agents) == ("w1", "host-1", 4242, ["a", "b"])
    assert (seen.active, seen.processed, seen.concurrency) == (2, 7, 4)
    assert seen.last_heartbeat == pytest.approx(time.time(), abs=2)
    assert presence.is_online(seen)


def test_a_worker_whose_heartbeat_is_older_than_the_ttl_is_offline(
    presence: Presence, redis_client: redis.Redis, keys: Keys
) -> None:
    presence.heartbeat(worker("w1", ["a"]))
    stale = json.loads(redis_client.get(keys.worker("w1")))
    stale["last_heartbeat"] = time.time() - 30
    redis_client.set(keys.worker("w1"), json.dumps(stale))
    assert presence.workers() == []
    [offline] = presence.workers(include_offline=True)
    assert not presence.is_online(offline)


def test_a_worker_gone_for_long_is_forgotten_entirely(presence: Presence, redis_client: redis.Redis,
                                                      keys: Keys) -> None:
    presence.heartbeat(worker("w1", ["a"]))
    redis_client.zadd(keys.workers(), {"w1": time.time() - 600})
    assert presence.workers(include_offline=True) == []
    assert redis_client.zcard(keys.workers()) == 0


def test_live_workers_of_an_agent_are_only_those_that_verified_it(presence: Presence) -> None:
    presence.heartbeat(worker("w1", ["a"]))
    presence.heartbeat(worker("w2", ["a", "b"], not_ready={"a": "the LLM rejected the API key"}))
    presence.heartbeat(worker("w3", ["b"]))
    assert [w.worker_id for w in presence.live_workers("a")] == ["w1"]
    assert sorted(w.worker_id for w in presence.live_workers("b")) == ["w2", "w3"]
    assert presence.live_workers("c") == []


def test_a_worker_that_leaves_disappears_at_once(presence: Presence) -> None:
    presence.heartbeat(worker("w1", ["a"]))
    presence.leave("w1")
    assert presence.workers(include_offline=True) == []


def test_the_bridge_state_round_trips_and_expires_with_its_ttl(redis_client: redis.Redis, keys: Keys) -> None:
    state = BridgeState(bridge_id="b1", connected=True, subscribed=True, connection_attempts=2,
                        connections_established=1, connection_failures=1, messages_received=9,
                        connected_since=time.time() - 5,
                        agents={"a": {"status": "available", "reason": "", "since": time.time()}})
    write_bridge_state(redis_client, keys, state, ttl_s=10)
    read = read_bridge_state(redis_client, keys)
    assert read == state
    assert read is not None and read.last_heartbeat == pytest.approx(time.time(), abs=2)
    assert 0 < redis_client.ttl(keys.bridge()) <= 10


def test_no_bridge_state_is_none(redis_client: redis.Redis, keys: Keys) -> None:
    assert read_bridge_state(redis_client, keys) is None


def test_heartbeats_and_bridge_reports_carry_the_process_memory_and_cpu(presence: Presence, redis_client: redis.Redis,
                                                                        keys: Keys) -> None:
    presence.heartbeat(worker("w1", ["a"]))
    [seen] = presence.workers()
    assert seen.rss_bytes > 1_000_000 and seen.cpu_seconds > 0
    write_bridge_state(redis_client, keys, BridgeState(bridge_id="b"))
    bridge = read_bridge_state(redis_client, keys)
    assert bridge is not None and bridge.rss_bytes > 1_000_000 and bridge.cpu_seconds > 0
