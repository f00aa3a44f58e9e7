"""Our statuses on the real broker carry description, capabilities, workers and load (PROTOCOL.md §8),
and are published again when the load moves and every heartbeat, with an expiry of three heartbeats."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from agent2389.config.agent import AgentConfig
from agent2389.state.keys import Keys
from agent2389.state.presence import Presence, WorkerInfo, read_bridge_state
from agent2389.state.registry import AgentRegistry
from bridge.agent_link import AgentLink
from bridge.availability import AvailabilityMonitor, ConnectionChanges
from bridge.inbox import Inbox
from tests.bridge.status_listener import SeenStatus, StatusListener
from tests.e2e.stack import wait_until


class Deployment:
    """One agent's link and availability monitor, with a worker and its in-progress tasks written to Redis."""

    def __init__(self, mqtt_url: str, client: redis.Redis, keys: Keys, agent_id: str, heartbeat_s: float,
                 concurrency: int) -> None:
        self.agent_id, self.client, self.keys = agent_id, client, keys
        self.worker_id = f"w-{agent_id}"
        agent = AgentConfig.model_validate({"agent": {"id": agent_id, "description": "Finds sources",
                                                      "capabilities": ["search", "summarize"]},
                                            "mqtt": {"broker_url": mqtt_url}})
        changes = ConnectionChanges()
        self.link = AgentLink(agent, f"test-bridge-{agent_id}", Inbox(), changes)
        presence = Presence(client, keys, ttl_s=120)
        presence.heartbeat(WorkerInfo(worker_id=self.worker_id, host="h", pid=1, agents=[agent_id],
                                      concurrency=concurrency, started_at=time.time()))
        self.monitor = AvailabilityMonitor([self.link], changes, client, keys, presence, interval_s=0.05,
                                           heartbeat_s=heartbeat_s)

    def start(self) -> None:
        self.link.start()
        self.monitor.start()

    def stop(self) -> None:
        self.monitor.stop()
        self.link.stop()

    def run_tasks(self, count: int) -> None:
        for _ in range(count):
            member = f"{self.agent_id}:{uuid.uuid4().hex}"
            self.client.zadd(self.keys.in_flight(), {member: time.time()})
            self.client.hset(self.keys.in_flight_owners(), member, self.worker_id)

    def reported_load(self) -> float | None:
        state = read_bridge_state(self.client, self.keys)
        return state.agents.get(self.agent_id, {}).get("load") if state else None


def next_available(listener: StatusListener) -> SeenStatus:
    while (seen := listener.next()).body["status"] != "available":
        pass
    return seen


def next_load(listener: StatusListener, previous: float) -> float:
    """The load of the next available status that reports another load than ``previous``: a status may be
    sent again unchanged (a connection change re-publishes it), but never with a load it should not have."""
    while (load := next_available(listener).body["load"]) == previous:
        pass
    return float(load)


@pytest.fixture
def listener(mqtt_url: str) -> Iterator[StatusListener]:
    client = StatusListener(mqtt_url)
    yield client
    client.close()


@pytest.fixture
def deploy(mqtt_url: str, redis_client: redis.Redis, key_prefix: str, unique_id: str,
           listener: StatusListener) -> Iterator[Callable[..., Deployment]]:
    started: list[Deployment] = []

    def make(heartbeat_s: float = 60.0, concurrency: int = 4) -> Deployment:
        deployment = Deployment(mqtt_url, redis_client, Keys(key_prefix), f"pub-{unique_id}", heartbeat_s,
                                concurrency)
        listener.listen(deployment.agent_id)
        deployment.start()
        started.append(deployment)
        return deployment

    yield make
    for deployment in started:
        deployment.stop()
        listener.publish(deployment.agent_id, b"")  # leave no retained status on the shared broker


def test_an_available_status_carries_description_capabilities_workers_load_and_an_expiry(
        deploy: Callable[..., Deployment], listener: StatusListener) -> None:
    deployment = deploy(heartbeat_s=60.0)
    seen = next_available(listener)
    assert seen.body["agent_id"] == deployment.agent_id and seen.retained
    assert seen.body["description"] == "Finds sources"
    assert seen.body["capabilities"] == ["search", "summarize"]
    assert (seen.body["workers"], seen.body["load"]) == (1, 0.0)
    assert seen.body["timestamp"].endswith("Z")
    assert seen.expiry_s == 180


def test_our_agent_is_routable_in_the_registry_before_its_available_status_reaches_anyone(
        deploy: Callable[..., Deployment], listener: StatusListener, redis_client: redis.Redis,
        key_prefix: str) -> None:
    """No status watcher runs here: the bridge records what it publishes, so a peer that routes the moment it
    sees the agent announced finds it in the registry (PROTOCOL.md §8, §9)."""
    deployment = deploy(heartbeat_s=60.0)
    next_available(listener)
    record = AgentRegistry(redis_client, Keys(key_prefix)).get(deployment.agent_id)
    assert record is not None and record.routable(time.time())
    assert (record.workers, record.capabilities, record.foreign) == (1, ("search", "summarize"), False)
    assert record.expires_at == pytest.approx(time.time() + 180, abs=10)


def test_the_status_is_published_again_when_the_load_moves_by_a_tenth_or_more(
        deploy: Callable[..., Deployment], listener: StatusListener) -> None:
    deployment = deploy(heartbeat_s=60.0, concurrency=20)
    assert next_available(listener).body["load"] == 0.0
    deployment.run_tasks(1)
    wait_until(lambda: deployment.reported_load() == 0.05, 10, "the bridge saw one task of 20 threads running")
    deployment.run_tasks(2)
    assert next_load(listener, 0.0) == 0.15  # 0.05 was too small a move to publish
    deployment.run_tasks(5)
    assert next_load(listener, 0.15) == 0.4


def test_an_unchanged_status_is_published_again_every_heartbeat(deploy: Callable[..., Deployment],
                                                                  listener: StatusListener) -> None:
    deploy(heartbeat_s=1.0)
    first = next_available(listener)
    shown = time.monotonic()
    # A connection change may re-publish it at once; the heartbeat's comes a second later.
    while (again := next_available(listener)) and time.monotonic() - shown < 0.9:
        pass
    assert again.body["timestamp"] >= first.body["timestamp"]
    assert {k: v for k, v in again.body.items() if k != "timestamp"} == \
        {k: v for k, v in first.body.items() if k != "timestamp"}
    assert again.expiry_s == 3
