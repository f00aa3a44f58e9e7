"""Fixtures of the operator-tool tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e.stack import MqttPeer


@pytest.fixture
def announce(peer: MqttPeer) -> Iterator[Callable[[str, str], None]]:
    """Plays an agent's bridge: publishes its retained status (cleared after the test)."""
    topics: list[str] = []

    def publish_status(agent_id: str, status: str) -> None:
        topic = f"/control/agents/{agent_id}/status"
        peer.publish(topic, {"agent_id": agent_id, "status": status}, retain=True)
        topics.append(topic)

    yield publish_status
    for topic in topics:
        peer.publish(topic, b"", retain=True)
