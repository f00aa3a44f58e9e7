"""Load: 200 v2 workflows of 5 hops each at once, on the echo provider (PROTOCOL.md §9).

Six agents route with the echo rule (docs/routing.md): each forwards to the first agent of its ``allow``
list that has not worked on the workflow yet, so every workflow runs hop-1 → … → hop-6 and hop-6
completes it. Every workflow must be answered exactly once, with a trace of its five hops and the
completion, and its timeline must show each hop decided once and each agent visit started once: no hop
lost, none duplicated.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agent2389.state.keys import Keys
from agent2389.state.registry import AgentRegistry
from tests.e2e.stack import MqttPeer, Stack, wait_until, write_agent
from tests.e2e.workflows import wait_routable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
WORKFLOWS = 200
HOPS = 5


class LoadStack(Stack):
    """The production lease (30 s), not the e2e stacks' 6 s: a backlog of 1200 visits on two busy cores may
    wait longer than 6 s, and a lease that lapses re-runs the visit (correctly, but then "started" counts
    twice and this test could not tell a duplicate from a redelivery)."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "AGENT2389_VISIBILITY_TIMEOUT": "30"}


@pytest.fixture
def chain(unique_id: str) -> list[str]:
    return [f"hop{n}-{unique_id}" for n in range(1, HOPS + 2)]


@pytest.fixture
def routed_stack(tmp_path: Path, mqtt_url: str, redis_url: str, key_prefix: str, peer: MqttPeer,
                 chain: list[str]) -> Iterator[Stack]:
    directory = tmp_path / "agents"
    directory.mkdir()
    allow = json.dumps(chain)
    for agent_id in chain:
        write_agent(directory, agent_id, mqtt_url,
                    extra=f'[routing]\nstrategy = "llm"\nmax_iterations = {HOPS + 2}\nallow = {allow}\n')
    stack = LoadStack(directory, redis_url, key_prefix, tmp_path)
    for agent_id in chain:
        peer.subscribe(f"/control/agents/{agent_id}/status")
    stack.worker("--concurrency", "50")
    stack.bridge()
    for agent_id in chain:
        peer.wait_for_status(agent_id, "available")
    wait_routable(redis_url, key_prefix, chain)
    yield stack
    stack.stop_all()


def timeline_events(client: redis.Redis, keys: Keys, task_ids: list[str]) -> dict[str, list[dict[str, object]]]:
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.lrange(keys.task_timeline(task_id), 0, -1)
    return {task_id: [json.loads(raw) for raw in events] for task_id, events in zip(task_ids, pipe.execute(),
                                                                                  strict=True)}


def test_200_workflows_of_5_hops_at_once_are_each_answered_once_with_no_hop_lost_or_duplicated(
    routed_stack: Stack, peer: MqttPeer, chain: list[str], redis_url: str, key_prefix: str
) -> None:
    cid = f"load-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")
    started = time.monotonic()
    sent = [peer.send_task(chain[0], cid, f"workflow {n}", version="2.0")["task_id"] for n in range(WORKFLOWS)]

    answers = peer.expect(WORKFLOWS, timeout_s=120)
    seconds = time.monotonic() - started
    answers += peer.quiet_for(2)
    by_task = Counter(body["task_id"] for _, body, _ in answers)
    assert set(by_task) == set(sent) and set(by_task.values()) == {1}, "a workflow was lost or answered twice"
    expected_trace = [(chain[n], chain[n + 1], n + 1) for n in range(HOPS)] + [(chain[-1], None, HOPS + 1)]
    for topic, body, _ in answers:
        assert topic == f"/conversations/{cid}/{chain[-1]}", body.get("routing_trace")
        assert [(t["from_agent"], t["to_agent"], t["step_number"]) for t in body["routing_trace"]] == expected_trace

    client = redis.Redis.from_url(redis_url)
    keys = Keys(key_prefix)

    def settled() -> dict[str, list[dict[str, object]]] | None:
        events = timeline_events(client, keys, sent)
        done = all(sum(1 for e in found if e["event"] == "completed") >= HOPS + 1 for found in events.values())
        return events if done else None

    try:
        timelines = wait_until(settled, 30, "every visit's finish is in its timeline")
        registry_size = len(AgentRegistry(client, keys).agents())
    finally:
        client.close()
    for task_id, events in timelines.items():
        routed = sorted(int(str(e["step"])) for e in events if e["event"] == "routed")
        assert routed == list(range(1, HOPS + 1)), f"{task_id}: hops decided {routed}"
        assert sum(1 for e in events if e["event"] == "workflow_complete") == 1, task_id
        visits = Counter(str(e["agent"]) for e in events if e["event"] == "started")
        assert visits == Counter(chain), f"{task_id}: visits started {dict(visits)}"
        finished = Counter(str(e["agent"]) for e in events if e["event"] == "completed")
        assert finished == Counter(chain), f"{task_id}: visits finished {dict(finished)}"
    decisions = sorted(float(str(e["decision_ms"])) for found in timelines.values() for e in found
                       if e["event"] == "routed")
    print(f"\n{WORKFLOWS} workflows of {HOPS} hops: answered in {seconds:.1f} s "
          f"({WORKFLOWS * (HOPS + 1) / seconds:.0f} agent visits/s); routing decision p50 "
          f"{decisions[len(decisions) // 2]:.2f} ms, p99 {decisions[int(len(decisions) * 0.99)]:.2f} ms (wall, "
          f"{registry_size} agents in the registry)")
