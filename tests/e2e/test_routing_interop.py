"""Interop (PROTOCOL.md §8, §9): an agent of another implementation takes part in our v2 workflows.

The foreign agent (tests/e2e/foreign_agent.py) is plain paho on MQTT 3.1.1 with a status of its own
minimal shape. It is discovered by the bridge's registry, chosen by our routing, and routes the workflow
back to one of ours, which completes it: the answer carries the whole trace, the foreign hop included.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from agent2389.state.keys import Keys
from agent2389.state.registry import AgentRegistry
from tests.e2e.foreign_agent import ForeignAgent
from tests.e2e.stack import MqttPeer, Stack, wait_until, write_agent
from tests.e2e.workflows import completed_workflow, wait_routable

pytestmark = pytest.mark.slow


def routing(strategy: str, allow: list[str], capabilities: list[str]) -> str:
    """``[agent]`` lines and a ``[routing]`` section, for ``write_agent``'s ``extra``."""
    return (f"capabilities = {capabilities!r}\n".replace("'", '"')
            + f'[routing]\nstrategy = "{strategy}"\nmax_iterations = 5\nallow = {allow!r}\n'.replace("'", '"'))


@pytest.fixture
def team(unique_id: str) -> dict[str, str]:
    return {"entry": f"entry-{unique_id}", "closer": f"closer-{unique_id}", "foreign": f"foreign-{unique_id}",
            "v1": f"v1only-{unique_id}"}


@pytest.fixture
def foreign(mqtt_url: str, team: dict[str, str]) -> Iterator[ForeignAgent]:
    agent = ForeignAgent(mqtt_url, team["foreign"], route_to=team["closer"], capabilities=["critique", "review"])
    yield agent
    agent.close()


@pytest.fixture
def v1_only(mqtt_url: str, team: dict[str, str]) -> Iterator[ForeignAgent]:
    agent = ForeignAgent(mqtt_url, team["v1"], route_to=None, capabilities=["summaries"])
    yield agent
    agent.close()


@pytest.fixture
def ours(tmp_path: Path, mqtt_url: str, redis_url: str, key_prefix: str, peer: MqttPeer,
         team: dict[str, str]) -> Iterator[Stack]:
    """Our entry agent (strategy llm) may route to either foreign agent; our closer (strategy agent) may
    route only to the v2 foreign agent, who has then worked on the workflow: on echo it completes."""
    directory = tmp_path / "agents"
    directory.mkdir()
    write_agent(directory, team["entry"], mqtt_url, extra=routing("llm", [team["foreign"]], ["research"]))
    write_agent(directory, team["closer"], mqtt_url, extra=routing("agent", [team["foreign"]], ["writing"]))
    write_agent(directory, f"{team['entry']}-v1", mqtt_url, extra=routing("llm", [team["v1"]], ["research"]))
    stack = Stack(directory, redis_url, key_prefix, tmp_path)
    for agent_id in (team["entry"], team["closer"], f"{team['entry']}-v1"):
        peer.subscribe(f"/control/agents/{agent_id}/status")
    stack.worker()
    stack.bridge()
    for agent_id in (team["entry"], team["closer"], f"{team['entry']}-v1"):
        peer.wait_for_status(agent_id, "available")
    wait_routable(redis_url, key_prefix, [team["entry"], team["closer"], f"{team['entry']}-v1"])
    yield stack
    stack.stop_all()


def discovered(redis_url: str, key_prefix: str, agent_id: str) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url)
    try:
        registry = AgentRegistry(client, Keys(key_prefix))
        record = wait_until(lambda: next((r for r in registry.routable() if r.agent_id == agent_id), None), 20,
                            f"{agent_id} is routable in the registry")
        return record.to_json(0.0)
    finally:
        client.close()


def v2_task(peer: MqttPeer, agent_id: str, conversation_id: str) -> dict[str, Any]:
    return peer.send_task(agent_id, conversation_id, "the 2389 protocol", version="2.0")


def test_a_foreign_agent_is_discovered_routed_to_and_routes_back_and_the_answer_has_the_whole_trace(
    ours: Stack, peer: MqttPeer, foreign: ForeignAgent, team: dict[str, str], redis_url: str, key_prefix: str
) -> None:
    record = discovered(redis_url, key_prefix, team["foreign"])
    assert record["foreign"] is True and record["capabilities"] == ["critique", "review"]
    assert record["load"] == 0.0 and record["description"] == ""

    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")
    task = v2_task(peer, team["entry"], cid)

    routed_to_foreign = foreign.next_received()
    assert routed_to_foreign["task_id"] == task["task_id"] and routed_to_foreign["version"].startswith("2")
    assert routed_to_foreign["topic"] == f"/control/agents/{team['foreign']}/input"
    assert routed_to_foreign["context"]["iteration_count"] == 1
    assert [s["agent_id"] for s in routed_to_foreign["context"]["steps_completed"]] == [team["entry"]]
    assert [(t["from_agent"], t["to_agent"], t["step_number"]) for t in routed_to_foreign["routing_trace"]] == [
        (team["entry"], team["foreign"], 1)]

    [(topic, answer, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{team['closer']}"
    assert answer["task_id"] == task["task_id"] and f"{team['foreign']} reviewed:" in answer["response"]
    assert [(t["from_agent"], t["to_agent"], t["step_number"]) for t in answer["routing_trace"]] == [
        (team["entry"], team["foreign"], 1), (team["foreign"], team["closer"], 2), (team["closer"], None, 3)]
    assert peer.quiet_for(1) == []

    flow = completed_workflow(redis_url, key_prefix, task["task_id"])
    assert flow["path"] == [team["entry"], team["foreign"], team["closer"]]
    assert [(h["from_agent"], h["to_agent"], h["recorded"]) for h in flow["hops"]] == [
        (team["entry"], team["foreign"], True), (team["foreign"], team["closer"], False)]


def test_a_v1_only_foreign_agent_answers_a_routed_v2_envelope_as_v1_and_the_workflow_ends_there(
    ours: Stack, peer: MqttPeer, v1_only: ForeignAgent, team: dict[str, str], redis_url: str, key_prefix: str
) -> None:
    discovered(redis_url, key_prefix, team["v1"])
    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")
    task = v2_task(peer, f"{team['entry']}-v1", cid)
    assert v1_only.next_received()["routing_trace"][0]["to_agent"] == team["v1"]
    [(topic, answer, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{team['v1']}"
    assert set(answer) == {"task_id", "response"} and answer["task_id"] == task["task_id"]
    assert answer["response"].startswith(f"{team['v1']} reviewed: say: ")
