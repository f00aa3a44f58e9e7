"""PROTOCOL.md §5, step by step, through the real bridge, worker, Redis and Mosquitto."""

from __future__ import annotations

import json
import uuid

from tests.e2e.stack import MqttPeer, Stack


def conversation() -> str:
    return f"conv-{uuid.uuid4().hex[:8]}"


def test_a_task_is_answered_on_its_conversation_topic(running: Stack, peer: MqttPeer,
                                                      agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    task = peer.send_task(agents["a"], cid, "hello")
    [(topic, body, retained)] = peer.expect(1)
    assert topic == f"/conversations/{cid}/{agents['a']}" and not retained
    assert body == {"task_id": task["task_id"], "response": 'say: {"text": "hello"}'}


def test_a_retained_task_is_ignored(stack: Stack, peer: MqttPeer, agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    topic = f"/control/agents/{agents['a']}/input"
    envelope = {"task_id": str(uuid.uuid4()), "conversation_id": cid, "topic": topic, "input": "x"}
    # Retained before the bridge ever subscribed: the broker hands it over with the retain flag set.
    peer.publish(topic, envelope, retain=True)
    try:
        peer.subscribe(f"/control/agents/{agents['a']}/status")
        stack.worker()
        stack.bridge()
        peer.wait_for_status(agents["a"], "available")
        assert peer.quiet_for(2) == []
    finally:
        peer.publish(topic, b"", retain=True)


def test_a_task_published_retained_while_the_bridge_listens_is_ignored_too(running: Stack, peer: MqttPeer,
                                                                          agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    topic = f"/control/agents/{agents['a']}/input"
    stale = {"task_id": str(uuid.uuid4()), "conversation_id": cid, "topic": topic, "input": "x"}
    # Without Retain As Published the broker would clear the flag on its way to a live subscriber.
    peer.publish(topic, stale, retain=True)
    try:
        task = peer.send_task(agents["a"], cid, "fresh")
        [(_, body, _)] = peer.expect(1)
        assert body["task_id"] == task["task_id"]
        assert peer.quiet_for(1) == []
    finally:
        peer.publish(topic, b"", retain=True)


def test_an_oversized_task_is_rejected_without_a_reply_and_the_next_is_answered(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    big = {"task_id": str(uuid.uuid4()), "conversation_id": cid, "topic": f"/control/agents/{agents['a']}/input",
           "input": "x" * 262144}
    peer.publish(f"/control/agents/{agents['a']}/input", big)
    task = peer.send_task(agents["a"], cid, "after")
    [(_, body, _)] = peer.expect(1)
    assert body["task_id"] == task["task_id"]
    assert peer.quiet_for(0.5) == []


def test_malformed_json_is_only_logged_and_the_next_task_is_answered(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    peer.publish(f"/control/agents/{agents['a']}/input", b"{not json")
    task = peer.send_task(agents["a"], cid)
    [(_, body, _)] = peer.expect(1)
    assert body["task_id"] == task["task_id"]


def test_a_task_missing_a_field_gets_an_invalid_input_error(running: Stack, peer: MqttPeer,
                                                            agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    task_id = str(uuid.uuid4())
    peer.publish(f"/control/agents/{agents['a']}/input",
                 {"task_id": task_id, "conversation_id": cid, "topic": f"/control/agents/{agents['a']}/input"})
    [(topic, body, _)] = peer.expect(1)
    assert topic == f"/conversations/{cid}/{agents['a']}"
    assert body["task_id"] == task_id and body["error"]["code"] == "invalid_input"
    assert "input" in body["error"]["message"]


def test_a_task_whose_topic_does_not_match_is_discarded_silently(running: Stack, peer: MqttPeer,
                                                                 agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    envelope = {"task_id": str(uuid.uuid4()), "conversation_id": cid,
                "topic": f"/control/agents/{agents['b']}/input", "input": "x"}
    peer.publish(f"/control/agents/{agents['a']}/input", envelope)
    assert peer.quiet_for(1.5) == []


def test_a_topic_in_another_spelling_is_the_same_topic(running: Stack, peer: MqttPeer,
                                                       agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    task_id = str(uuid.uuid4())
    peer.publish(f"/control/agents/{agents['a']}/input",
                 {"task_id": task_id, "conversation_id": cid, "topic": f"control//agents/{agents['a']}/input/",
                  "input": "x"})
    [(_, body, _)] = peer.expect(1)
    assert body["task_id"] == task_id


def test_a_duplicate_delivery_is_answered_once(running: Stack, peer: MqttPeer, agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    task = peer.send_task(agents["a"], cid)
    peer.publish(f"/control/agents/{agents['a']}/input", task)
    peer.publish(f"/control/agents/{agents['a']}/input", task)
    assert len(peer.expect(1)) == 1
    assert peer.quiet_for(1.5) == []


def test_a_three_agent_pipeline_forwards_each_answer_and_replies_once_from_the_last(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    task = peer.send_task(agents["a"], cid, "start", next_agents=[agents["b"], agents["c"]])
    [(topic, body, _)] = peer.expect(1)
    assert topic == f"/conversations/{cid}/{agents['c']}"
    assert body["task_id"] == task["task_id"]
    assert body["response"] == f'then {agents["c"]}: then {agents["b"]}: say: {{"text": "start"}}'
    assert peer.quiet_for(1) == []


def pipeline_of(depth: int, agents: dict[str, str]) -> list[str]:
    cycle = [agents["a"], agents["b"], agents["c"]]
    return [cycle[i % 3] for i in range(depth)]


def test_a_pipeline_of_depth_16_visits_agents_repeatedly_and_is_answered(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    route = pipeline_of(16, agents)
    task = peer.send_task(route[0], cid, "deep", next_agents=route[1:])
    [(topic, body, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{route[-1]}" and body["task_id"] == task["task_id"]
    assert body["response"].count("then ") == 15


def test_a_pipeline_of_depth_17_fails_before_any_llm_call(running: Stack, peer: MqttPeer,
                                                          agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    route = pipeline_of(17, agents)
    task = peer.send_task(route[0], cid, "too deep", next_agents=route[1:])
    [(topic, body, _)] = peer.expect(1)
    assert topic == f"/conversations/{cid}/{route[0]}"
    assert body == {"task_id": task["task_id"],
                    "error": {"code": "pipeline_depth_exceeded", "message": body["error"]["message"]}}
    worker_log = running.processes[0].log_lines()
    assert not any(line.get("span", {}).get("task_id") == task["task_id"] for line in worker_log)


def test_a_conversation_id_with_a_wildcard_is_rejected_without_crashing(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    peer.publish(f"/control/agents/{agents['a']}/input",
                 {"task_id": str(uuid.uuid4()), "conversation_id": "a/+/#", "topic":
                  f"/control/agents/{agents['a']}/input", "input": "x"})
    task = peer.send_task(agents["a"], cid)
    [(_, body, _)] = peer.expect(1)
    assert body["task_id"] == task["task_id"]


def test_every_published_error_is_safe_json(running: Stack, peer: MqttPeer, agents: dict[str, str]) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    peer.publish(f"/control/agents/{agents['a']}/input",
                 {"task_id": "/etc/passwd", "conversation_id": cid, "topic": 5, "input": None})
    [(_, body, _)] = peer.expect(1)
    assert set(body) == {"error", "task_id"} and body["error"]["code"] == "invalid_input"
    assert "/etc" not in json.dumps(body) and len(body["error"]["message"]) <= 500
