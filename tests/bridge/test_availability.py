"""The availability monitor on the real Redis, with an agent's MQTT link played by a recorder."""

from __future__ import annotations

import json

import redis

from agent2389.config.agent import AgentConfig
from agent2389.state.keys import Keys
from agent2389.state.presence import Presence
from bridge.availability import AvailabilityMonitor, ConnectionChanges

AGENT = AgentConfig.model_validate({"agent": {"id": "a"}})


class FakeLink:
    agent = AGENT
    connected = subscribed = True
    connection_attempts = connections_established = 1
    connection_failures = messages_received = 0
    connected_since = 0.0

    def __init__(self) -> None:
        self.published: list[tuple[str, int]] = []

    def status_payload(self, status: str, workers: int, load: float = 0.0) -> str:
        return json.dumps({"agent_id": self.agent.id, "status": status, "workers": workers, "load": load})

    def publish_status(self, status: str, workers: int, load: float = 0.0, expiry_s: int | None = None) -> None:
        self.published.append((status, workers))


def monitor(redis_client: redis.Redis, key_prefix: str) -> tuple[AvailabilityMonitor, FakeLink, ConnectionChanges]:
    keys, link, changes = Keys(key_prefix), FakeLink(), ConnectionChanges()
    return AvailabilityMonitor([link], changes, redis_client, keys, Presence(redis_client, keys)), link, changes


def test_a_status_is_published_once_until_the_connection_changes(redis_client: redis.Redis,
                                                                 key_prefix: str) -> None:
    check, link, changes = monitor(redis_client, key_prefix)
    check.check()
    check.check()
    assert link.published == [("unavailable", 0)]
    changes.connection_changed("a")  # a reconnect: the protocol wants the status sent again
    check.check()
    assert link.published == [("unavailable", 0), ("unavailable", 0)]


def test_a_change_wakes_the_monitor_at_once() -> None:
    changes = ConnectionChanges()
    changes.connection_changed("a")
    assert changes.wait(5)
    assert changes.take() == {"a"} and changes.take() == set()
    assert not changes.wait(0.01)
