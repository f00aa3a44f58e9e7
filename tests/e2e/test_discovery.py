"""Discovery end to end (PROTOCOL.md §8): a real bridge and worker, and a foreign agent on the same broker
written with plain paho, publishing its own minimal status."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agent2389.config.settings import Settings
from agent2389.state.keys import Keys
from agent2389.state.registry import AgentRegistry
from tests.conftest import REPO
from tests.e2e.stack import MqttPeer, Stack, wait_until, write_agent
from web.app import create_app


@pytest.fixture
def ours(unique_id: str) -> str:
    return f"disc-{unique_id}"


@pytest.fixture
def foreign(unique_id: str, peer: MqttPeer) -> Iterator[str]:
    agent_id = f"foreign-{unique_id}"
    yield agent_id
    peer.publish(f"/control/agents/{agent_id}/status", b"", retain=True)


@pytest.fixture
def discovery_stack(tmp_path: Path, ours: str, mqtt_url: str, redis_url: str, key_prefix: str,
                    peer: MqttPeer) -> Iterator[Stack]:
    config = tmp_path / "agents"
    config.mkdir()
    write_agent(config, ours, mqtt_url, extra='capabilities = ["echo", "testing"]')
    stack = Stack(config, redis_url, key_prefix, tmp_path)
    peer.subscribe(f"/control/agents/{ours}/status")
    stack.worker()
    stack.bridge()
    peer.wait_for_status(ours, "available")
    yield stack
    stack.stop_all()
    peer.publish(f"/control/agents/{ours}/status", b"", retain=True)


def test_ours_and_a_foreign_agent_are_in_the_shared_registry_the_api_and_inspect_agents(
        discovery_stack: Stack, peer: MqttPeer, ours: str, foreign: str, redis_client: redis.Redis,
        redis_url: str, key_prefix: str) -> None:
    peer.publish(f"/control/agents/{foreign}/status", {"agent_id": foreign, "status": "available",
                                                        "timestamp": "2026-01-01T00:00:00Z",
                                                        "capabilities": ["rust"]}, retain=True)
    registry = AgentRegistry(redis_client, Keys(key_prefix))
    wait_until(lambda: {ours, foreign} <= {r.agent_id for r in registry.routable()}, 20,
               "both agents are routable in the registry")
    records = {r.agent_id: r for r in registry.agents()}
    assert not records[ours].foreign and records[ours].capabilities == ("echo", "testing")
    assert records[ours].workers == 1 and records[ours].expires_at is not None
    assert records[foreign].foreign and records[foreign].capabilities == ("rust",)

    app = create_app(Settings(redis_url=redis_url, key_prefix=key_prefix))
    try:
        listed = {a["agent"]: a for a in app.test_client().get("/api/agents").get_json()["agents"]}
    finally:
        app.extensions["agent2389"].client.close()
    assert (listed[foreign]["foreign"], listed[foreign]["capabilities"]) == (True, ["rust"])
    assert (listed[ours]["foreign"], listed[ours]["routable"]) == (False, True)

    shown = subprocess.run([sys.executable, "-m", "agent2389.ops.cli", "inspect", "agents"], cwd=REPO,
                           env=discovery_stack.env(), capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert any(line.split()[:2] == [foreign, "(foreign)"] for line in shown.stdout.splitlines()), shown.stdout

    peer.publish(f"/control/agents/{foreign}/status", b"", retain=True)
    wait_until(lambda: foreign not in {r.agent_id for r in registry.agents()}, 20,
               "the cleared status left the registry")
