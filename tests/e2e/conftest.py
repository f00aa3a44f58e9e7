"""Fixtures for end-to-end tests: a running bridge and worker on the real Redis and Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import MqttPeer, Stack, start_announced, write_agent


@pytest.fixture
def agents(unique_id: str) -> dict[str, str]:
    """Names for three agents of this test's own (topics on the shared broker never collide)."""
    return {role: f"{role}-{unique_id}" for role in ("a", "b", "c")}


@pytest.fixture
def config_dir(tmp_path: Path, agents: dict[str, str], mqtt_url: str) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    for agent_id in agents.values():
        write_agent(directory, agent_id, mqtt_url, extra="max_pipeline_depth = 16")
    return directory


@pytest.fixture
def stack(config_dir: Path, redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(config_dir, redis_url, key_prefix, tmp_path)
    yield running
    running.stop_all()


@pytest.fixture
def running(stack: Stack, peer: MqttPeer, agents: dict[str, str]) -> Stack:
    """A bridge and one worker, with every agent announced ``available``."""
    start_announced(stack, peer, agents.values())
    return stack
