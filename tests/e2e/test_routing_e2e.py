"""PROTOCOL.md §9 through the real bridge, worker, registry, Redis and Mosquitto: v2 workflows routed
by the echo provider's rule and by an HTTP gatekeeper, answered once, with their trace."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from agent2389.state.keys import Keys
from fakes.gatekeeper import complete, forward_to, gatekeeper
from tests.e2e.stack import MqttPeer, Stack, start_announced, wait_until, write_agent


def routing(strategy: str, allow: list[str], extra: str = "") -> str:
    return f'[routing]\nstrategy = "{strategy}"\nallow = {json.dumps(allow)}\n{extra}'


@pytest.fixture
def config_dir(tmp_path: Path, agents: dict[str, str], mqtt_url: str) -> Path:
    """a, b and c route among each other with the echo rule; the test may rewrite them before starting."""
    directory = tmp_path / "agents"
    directory.mkdir()
    ids = list(agents.values())
    for agent_id in ids:
        write_agent(directory, agent_id, mqtt_url, llm=routing("llm", [i for i in ids if i != agent_id]))
    return directory


def v2_task(peer: MqttPeer, agent_id: str, cid: str, **fields: Any) -> dict[str, Any]:
    return peer.send_task(agent_id, cid, "start", version="2.0", **fields)


def conversation(peer: MqttPeer) -> str:
    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")
    return cid


def timeline(redis_client: redis.Redis, key_prefix: str, task_id: str, event: str) -> list[dict[str, Any]]:
    raw = redis_client.lrange(Keys(key_prefix).task_timeline(task_id), 0, -1)
    return [e for e in map(json.loads, raw) if e["event"] == event]


def test_an_echo_workflow_visits_every_agent_once_and_the_last_answers_with_the_trace(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], redis_client: redis.Redis, key_prefix: str
) -> None:
    a, b, c = agents["a"], agents["b"], agents["c"]
    start_announced(stack, peer, agents.values())
    cid = conversation(peer)
    task = v2_task(peer, a, cid)
    [(topic, answer, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{c}" and answer["task_id"] == task["task_id"]
    assert answer["response"] == 'say: say: say: {"text": "start"}'
    hops = [(h["from_agent"], h["to_agent"], h["step_number"]) for h in answer["routing_trace"]]
    assert hops == [(a, b, 1), (b, c, 2), (c, None, 3)]
    assert peer.quiet_for(1) == []
    routed = wait_until(lambda: timeline(redis_client, key_prefix, task["task_id"], "routed") or None, 10,
                        "the hops reached the timeline")
    wait_until(lambda: len(timeline(redis_client, key_prefix, task["task_id"], "routed")) == 2, 10, "both hops")
    assert [(e["agent"], e["to_agent"], e["step"]) for e in
            timeline(redis_client, key_prefix, task["task_id"], "routed")] == [(a, b, 1), (b, c, 2)]
    assert routed[0]["strategy"] == "llm"
    [done] = wait_until(lambda: timeline(redis_client, key_prefix, task["task_id"], "workflow_complete"), 10,
                        "the end reached the timeline")
    assert done["agent"] == c and done["steps"] == 3


def test_a_workflow_sent_the_moment_its_agents_are_announced_is_routed_not_completed_as_unroutable(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], config_dir: Path, mqtt_url: str
) -> None:
    a, b, c = agents["a"], agents["b"], agents["c"]
    with gatekeeper(forward_to(c, "next"), forward_to(b, "last"), complete("done")) as (_, url):
        for agent_id in (a, b, c):
            write_agent(config_dir, agent_id, mqtt_url,
                        llm=routing("gatekeeper", [a, b, c], f'[routing.gatekeeper]\nurl = "{url}"\n'))
        start_announced(stack, peer, agents.values())
        cid = conversation(peer)
        v2_task(peer, a, cid)
        [(topic, answer, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{b}", answer
    assert [(h["from_agent"], h["to_agent"]) for h in answer["routing_trace"]] == [(a, c), (c, b), (b, None)]


def test_a_gatekeeper_workflow_visits_an_agent_twice_and_each_visit_is_processed(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], config_dir: Path, mqtt_url: str
) -> None:
    a, b = agents["a"], agents["b"]
    with gatekeeper(forward_to(b, "draft"), forward_to(a, "check"), complete("checked")) as (keeper, url):
        for agent_id in (a, b):
            write_agent(config_dir, agent_id, mqtt_url,
                        llm=routing("gatekeeper", [a, b], f'[routing.gatekeeper]\nurl = "{url}"\ntimeout_ms = 5000\n'))
        start_announced(stack, peer, agents.values())
        cid = conversation(peer)
        task = v2_task(peer, a, cid)
        [(topic, answer, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{a}" and answer["task_id"] == task["task_id"]
    assert answer["response"] == 'check: draft: say: {"text": "start"}'
    assert [(h["from_agent"], h["to_agent"]) for h in answer["routing_trace"]] == [(a, b), (b, a), (a, None)]
    assert [r["iteration_count"] for r in keeper.requests] == [0, 1, 2]
    assert [[s["agent_id"] for s in r["workflow_history"]] for r in keeper.requests] == [[], [a], [a, b]]
    assert peer.quiet_for(1) == []


def test_a_duplicate_delivery_of_one_hop_is_answered_once_and_a_later_visit_again(
    stack: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    a, b, c = agents["a"], agents["b"], agents["c"]
    start_announced(stack, peer, agents.values())
    cid = conversation(peer)
    steps = [{"agent_id": a, "action": "x", "timestamp": "2026-01-01T00:00:00Z"},
             {"agent_id": b, "action": "y", "timestamp": "2026-01-01T00:00:01Z"}]
    hop = v2_task(peer, c, cid, context={"original_query": "q", "iteration_count": 2, "steps_completed": steps})
    peer.publish(f"/control/agents/{c}/input", hop)
    [(topic, first, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{c}" and first["routing_trace"][-1]["step_number"] == 3
    assert peer.quiet_for(1.5) == []
    later = {**hop, "context": {**hop["context"], "iteration_count": 5}}
    peer.publish(f"/control/agents/{c}/input", later)
    [(_, second, _)] = peer.expect(1, timeout_s=30)
    assert second["task_id"] == hop["task_id"] and second["routing_trace"][-1]["step_number"] == 6


def test_an_agent_without_routing_answers_a_v2_envelope_as_v1(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], config_dir: Path, mqtt_url: str
) -> None:
    write_agent(config_dir, agents["a"], mqtt_url)
    start_announced(stack, peer, agents.values())
    cid = conversation(peer)
    task = v2_task(peer, agents["a"], cid, context={"original_query": "q", "iteration_count": 1})
    [(topic, answer, _)] = peer.expect(1, timeout_s=30)
    assert (topic, answer) == (f"/conversations/{cid}/{agents['a']}",
                               {"task_id": task["task_id"], "response": 'say: {"text": "start"}'})


def test_a_v2_envelope_with_a_malformed_context_gets_invalid_input(
    stack: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    start_announced(stack, peer, agents.values())
    cid = conversation(peer)
    v2_task(peer, agents["a"], cid, context={"original_query": "q", "iteration_count": "one"})
    [(_, answer, _)] = peer.expect(1, timeout_s=30)
    assert answer["error"]["code"] == "invalid_input" and "context.iteration_count" in answer["error"]["message"]
