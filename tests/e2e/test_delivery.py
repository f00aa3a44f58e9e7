"""Delivery guarantees when processes stop, gracefully or not (PROTOCOL.md §4 and §5)."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
import redis

from agent2389.config.settings import Settings
from agent2389.state.keys import Keys
from tests.e2e.stack import MqttPeer, Process, Stack, wait_until, write_agent
from web import inspection
from web.snapshot import read_snapshot

pytestmark = pytest.mark.slow


def conversation() -> str:
    return f"conv-{uuid.uuid4().hex[:8]}"


def start_slow_agent(stack: Stack, peer: MqttPeer, config_dir: Path, mqtt_url: str, unique_id: str,
                     delay_s: float, cid: str) -> tuple[str, Process]:
    """A bridge and one worker for an agent whose LLM takes ``delay_s``; returns its id and the worker."""
    slow = f"slow-{unique_id}"
    write_agent(config_dir, slow, mqtt_url, llm=f"delay_s = {delay_s}")
    peer.subscribe(f"/conversations/{cid}/#")
    peer.subscribe(f"/control/agents/{slow}/status")
    worker = stack.worker()
    stack.bridge()
    peer.wait_for_status(slow, "available")
    return slow, worker


def in_progress(redis_client: redis.Redis, stack: Stack, agent_id: str) -> int:
    """How many of the agent's tasks a worker has started and not finished, as the operations view shows."""
    settings = Settings(redis_url=stack.redis_url, key_prefix=stack.key_prefix)
    return sum(q["in_progress"] for q in inspection.queues(read_snapshot(redis_client, settings))
               if q["agent"] == agent_id)


def test_a_worker_killed_mid_task_loses_nothing_and_answers_once(
    stack: Stack, peer: MqttPeer, config_dir: Path, mqtt_url: str, unique_id: str, redis_client: redis.Redis
) -> None:
    cid = conversation()
    slow, doomed = start_slow_agent(stack, peer, config_dir, mqtt_url, unique_id, 3, cid)
    sent = {peer.send_task(slow, cid, f"t{i}")["task_id"] for i in range(5)}
    wait_until(lambda: in_progress(redis_client, stack, slow) == 5, 15, "the worker runs all five tasks")
    doomed.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    stack.worker()
    answers = peer.expect(5, timeout_s=40)
    recovered_s = time.monotonic() - killed_at
    print(f"all answered {recovered_s:.1f} s after the kill")
    assert {body["task_id"] for _, body, _ in answers} == sent
    assert all("response" in body for _, body, _ in answers)
    assert peer.quiet_for(3) == []
    assert recovered_s < 30


def test_a_killed_workers_tasks_stop_counting_as_in_progress_at_once_and_end_completed(
    stack: Stack, peer: MqttPeer, config_dir: Path, mqtt_url: str, unique_id: str, redis_client: redis.Redis
) -> None:
    cid = conversation()
    slow, doomed = start_slow_agent(stack, peer, config_dir, mqtt_url, unique_id, 4, cid)
    settings = Settings(redis_url=stack.redis_url, key_prefix=stack.key_prefix)
    sent = {peer.send_task(slow, cid, f"t{i}")["task_id"] for i in range(3)}
    wait_until(lambda: in_progress(redis_client, stack, slow) == 3, 15, "three tasks are in progress")
    doomed.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: in_progress(redis_client, stack, slow) == 0, 15,
               "the dead worker's tasks are no longer in progress")
    assert time.monotonic() - killed_at < 3 * settings.worker_heartbeat_s + 2
    stack.worker()
    answers = peer.expect(3, timeout_s=40)
    assert {body["task_id"] for _, body, _ in answers} == sent

    def states() -> set[str]:
        rows = inspection.tasks(redis_client, Keys(stack.key_prefix), inspection.TaskQuery(agent=slow))
        return {row["state"] for row in rows}

    wait_until(lambda: states() == {"completed"} and in_progress(redis_client, stack, slow) == 0, 5,
               "every task is recorded completed")


def test_a_task_published_while_the_bridge_is_down_is_answered_when_it_returns(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    bridge = running.processes[-1]
    assert bridge.stop() == 0
    peer.wait_for_status(agents["a"], "unavailable")
    task = peer.send_task(agents["a"], cid, "while away")
    running.bridge()
    [(_, body, _)] = peer.expect(1, timeout_s=20)
    assert body["task_id"] == task["task_id"]


def test_after_a_bridge_restart_a_task_retained_meanwhile_is_ignored_and_a_normal_one_answered(
    running: Stack, peer: MqttPeer, agents: dict[str, str], redis_client: redis.Redis
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    topic = f"/control/agents/{agents['a']}/input"
    assert running.processes[-1].stop() == 0
    peer.wait_for_status(agents["a"], "unavailable")
    stale = {"task_id": str(uuid.uuid4()), "conversation_id": cid, "topic": topic, "input": "stale"}
    # Queued in the bridge's persistent session while it is away: the broker must keep the retain flag.
    peer.publish(topic, stale, retain=True)
    try:
        fresh = peer.send_task(agents["a"], cid, "while away")
        running.bridge()
        [(_, body, _)] = peer.expect(1, timeout_s=20)
        assert body["task_id"] == fresh["task_id"]
        assert peer.quiet_for(2) == []
        rejected = redis_client.hget(Keys(running.key_prefix).agent_stats(agents["a"]), "rejected_retained")
        assert int(rejected or 0) >= 1
    finally:
        peer.publish(topic, b"", retain=True)


def test_a_bridge_stopped_gracefully_leaves_every_agent_retained_unavailable(
    running: Stack, peer: MqttPeer, agents: dict[str, str], mqtt_url: str
) -> None:
    running.processes[-1].signal(signal.SIGTERM)
    for agent_id in agents.values():
        assert peer.wait_for_status(agent_id, "unavailable")["workers"] == 0
    late = MqttPeer(mqtt_url)
    try:
        late.subscribe(f"/control/agents/{agents['b']}/status")
        status = late.wait_for_status(agents["b"], "unavailable", timeout_s=5)
        assert status["retained"] and status["timestamp"].endswith("Z")
    finally:
        late.close()


def test_a_bridge_killed_abruptly_is_announced_unavailable_by_its_last_will(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    running.processes[-1].signal(signal.SIGKILL)
    for agent_id in agents.values():
        peer.wait_for_status(agent_id, "unavailable", timeout_s=10)


def test_an_agent_without_workers_is_unavailable_and_its_tasks_wait_for_one(
    running: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    cid = conversation()
    peer.subscribe(f"/conversations/{cid}/#")
    worker = running.processes[0]
    worker.signal(signal.SIGKILL)
    peer.wait_for_status(agents["a"], "unavailable", timeout_s=20)
    task = peer.send_task(agents["a"], cid, "waiting")
    assert peer.quiet_for(1) == []
    running.worker()
    peer.wait_for_status(agents["a"], "available", timeout_s=20)
    [(_, body, _)] = peer.expect(1, timeout_s=20)
    assert body["task_id"] == task["task_id"]


def test_a_worker_stopped_gracefully_finishes_what_it_holds(
    stack: Stack, peer: MqttPeer, config_dir: Path, mqtt_url: str, unique_id: str, redis_client: redis.Redis
) -> None:
    cid = conversation()
    slow, worker = start_slow_agent(stack, peer, config_dir, mqtt_url, unique_id, 2, cid)
    sent = {peer.send_task(slow, cid, f"t{i}")["task_id"] for i in range(4)}
    wait_until(lambda: in_progress(redis_client, stack, slow) == 4, 15, "the worker runs all four tasks")
    worker.signal(signal.SIGTERM)
    answers = peer.expect(4, timeout_s=20)
    assert {body["task_id"] for _, body, _ in answers} == sent
    assert worker.popen.wait(30) == 0
