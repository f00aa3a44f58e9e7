"""The bridge's status watcher feeds the registry from every status on the real broker, foreign ones too."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from agent2389.config.agent import MqttSection
from agent2389.state.keys import Keys
from agent2389.state.registry import AgentRecord, AgentRegistry
from bridge.status_watch import StatusWatcher
from tests.bridge.status_listener import StatusListener
from tests.e2e.stack import wait_until


class Broker:
    """Plays other agents on the shared broker: every status it publishes is cleared afterwards."""

    def __init__(self, listener: StatusListener, unique_id: str) -> None:
        self.listener = listener
        self.unique_id = unique_id
        self.used: set[str] = set()

    def agent(self, name: str) -> str:
        agent_id = f"{name}-{self.unique_id}"
        self.used.add(agent_id)
        return agent_id

    def status(self, agent_id: str, state: str = "available", expiry_s: int | None = None, **extra: object) -> None:
        body = {"agent_id": agent_id, "status": state, "timestamp": "2026-01-01T00:00:00Z", **extra}
        self.listener.publish(agent_id, body, expiry_s)

    def raw(self, agent_id: str, payload: bytes) -> None:
        self.listener.publish(agent_id, payload)


@pytest.fixture
def registry(redis_client: redis.Redis, key_prefix: str) -> AgentRegistry:
    return AgentRegistry(redis_client, Keys(key_prefix))


@pytest.fixture
def broker(mqtt_url: str, unique_id: str) -> Iterator[Broker]:
    listener = StatusListener(mqtt_url)
    others = Broker(listener, unique_id)
    yield others
    for agent_id in others.used:
        listener.publish(agent_id, b"")
    listener.close()


@pytest.fixture
def start_watcher(mqtt_url: str, registry: AgentRegistry, unique_id: str) -> Iterator[Callable[..., StatusWatcher]]:
    watchers: list[StatusWatcher] = []

    def start(own: tuple[str, ...] = (), recorded: set[str] | None = None) -> StatusWatcher:
        watcher = StatusWatcher(MqttSection(broker_url=mqtt_url), f"test-registry-{unique_id}-{len(watchers)}",
                                registry, list(own), own_expiry_s=90, recorded=recorded)
        watcher.start()
        watchers.append(watcher)
        assert watcher.subscribed.wait(10), "the watcher never subscribed"
        return watcher

    yield start
    for watcher in watchers:
        watcher.stop()


def record_of(registry: AgentRegistry, agent_id: str) -> AgentRecord | None:
    return registry.get(agent_id)


def test_a_foreign_agent_with_its_own_minimal_status_is_discovered_as_foreign_and_routable(
        broker: Broker, registry: AgentRegistry, start_watcher: Callable[..., StatusWatcher]) -> None:
    start_watcher()
    rust = broker.agent("rust")
    broker.status(rust, capabilities=["search", "rust"])
    record = wait_until(lambda: record_of(registry, rust), 10, "the foreign agent is in the registry")
    assert record.foreign and record.capabilities == ("search", "rust")
    assert (record.load, record.description, record.workers, record.expires_at) == (0.0, "", None, None)
    assert rust in [r.agent_id for r in registry.routable()]


def test_statuses_retained_before_the_watcher_started_are_discovered(
        broker: Broker, registry: AgentRegistry, start_watcher: Callable[..., StatusWatcher]) -> None:
    early = broker.agent("early")
    broker.status(early)
    start_watcher()
    wait_until(lambda: record_of(registry, early), 10, "the retained status is in the registry")


def test_unavailable_a_cleared_status_or_an_expired_one_leaves_routing(
        broker: Broker, registry: AgentRegistry, start_watcher: Callable[..., StatusWatcher]) -> None:
    start_watcher()
    leaving, cleared, expiring = broker.agent("leaving"), broker.agent("cleared"), broker.agent("expiring")
    for agent_id in (leaving, cleared, expiring):
        broker.status(agent_id)
    wait_until(lambda: {leaving, cleared, expiring} <= {r.agent_id for r in registry.routable()}, 10,
               "all three are routable")
    broker.status(leaving, "unavailable")
    broker.raw(cleared, b"")
    broker.status(expiring, expiry_s=2)
    wait_until(lambda: not {leaving, cleared, expiring} & {r.agent_id for r in registry.routable()}, 15,
               "none of the three is routable")
    assert record_of(registry, cleared) is None
    assert record_of(registry, leaving).status == "unavailable"  # type: ignore[union-attr]
    gone = record_of(registry, expiring)
    assert gone is not None and gone.state(time.time()) == "expired"


def test_garbage_on_a_status_topic_is_counted_and_the_watcher_goes_on(
        broker: Broker, registry: AgentRegistry, start_watcher: Callable[..., StatusWatcher]) -> None:
    start_watcher()
    noisy, fine = broker.agent("noisy"), broker.agent("fine")
    before = registry.summary().ignored
    broker.raw(noisy, b"\xff not json")
    broker.raw(noisy, json.dumps({"agent_id": "somebody-else", "status": "available"}).encode())
    broker.raw(noisy, b'"available"')
    wait_until(lambda: registry.summary().ignored >= before + 3, 10, "the three payloads are counted")
    broker.status(fine)
    wait_until(lambda: record_of(registry, fine), 10, "a status after the garbage is still recorded")
    assert record_of(registry, noisy) is None


def test_our_own_status_without_a_message_expiry_expires_after_three_heartbeats(
        broker: Broker, registry: AgentRegistry, start_watcher: Callable[..., StatusWatcher]) -> None:
    ours = broker.agent("ours")
    registry.claim([ours])
    start_watcher(own=(ours,))
    broker.status(ours)
    record = wait_until(lambda: record_of(registry, ours), 10, "our status is in the registry")
    assert not record.foreign
    assert record.expires_at == pytest.approx(record.last_seen + 90)


def test_a_stopping_bridge_records_its_own_agents_unavailable_at_once(
        broker: Broker, registry: AgentRegistry, start_watcher: Callable[..., StatusWatcher]) -> None:
    ours, theirs = broker.agent("ours"), broker.agent("theirs")
    watcher = start_watcher(own=(ours,))
    broker.status(ours)
    broker.status(theirs)
    wait_until(lambda: {ours, theirs} <= {r.agent_id for r in registry.routable()}, 10, "both are routable")
    watcher.stop()
    assert [r.agent_id for r in registry.routable() if r.agent_id in (ours, theirs)] == [theirs]


def test_a_previous_runs_retained_status_does_not_overwrite_the_one_our_bridge_recorded_as_it_published(
        broker: Broker, registry: AgentRegistry, start_watcher: Callable[..., StatusWatcher]) -> None:
    ours, later = broker.agent("ours"), broker.agent("later")
    broker.status(ours, "unavailable")  # what the broker still holds from the previous run
    now_available = {"agent_id": ours, "status": "available", "timestamp": "2026-01-01T00:00:01Z"}
    registry.observe(f"/control/agents/{ours}/status", json.dumps(now_available).encode())
    start_watcher(own=(ours,), recorded={ours})
    broker.status(later)  # delivered after the retained ones: once it is recorded, they were handled
    wait_until(lambda: record_of(registry, later), 10, "a status published after the subscription is recorded")
    assert ours in [r.agent_id for r in registry.routable()]
    broker.status(ours, "unavailable")  # live, not retained: our agent did go away
    wait_until(lambda: ours not in [r.agent_id for r in registry.routable()], 10, "a live status is recorded")


class RedisAway(AgentRegistry):
    """The registry while Redis does not answer, until ``back()``."""

    away = True

    def observe(self, *args: Any, **kwargs: Any) -> str:
        if self.away:
            raise redis.ConnectionError("Redis is away")
        return super().observe(*args, **kwargs)

    def read(self) -> tuple[list[AgentRecord], int]:
        if self.away:
            raise redis.ConnectionError("Redis is away")
        return super().read()


def test_statuses_missed_while_redis_was_away_are_recorded_once_it_answers(
        broker: Broker, mqtt_url: str, redis_client: redis.Redis, key_prefix: str, unique_id: str) -> None:
    flaky = RedisAway(redis_client, Keys(key_prefix))
    watcher = StatusWatcher(MqttSection(broker_url=mqtt_url), f"test-registry-away-{unique_id}", flaky, [],
                            own_expiry_s=90)
    watcher.start()
    try:
        assert watcher.subscribed.wait(10)
        missed = broker.agent("missed")
        broker.status(missed)
        wait_until(lambda: watcher.redis_lost.is_set(), 10, "the watcher noticed Redis is away")
        flaky.away = False
        wait_until(lambda: flaky.get(missed), 15, "the retained status arrived again and was recorded")
    finally:
        watcher.stop()
