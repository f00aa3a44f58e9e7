"""Celery's own tools see and operate agent2389: `celery -A agent2389 …` and Flower, against a running stack."""

from __future__ import annotations

import shlex
import subprocess
import sys
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.state.keys import Keys
from agent2389.transport.parking import parked_key
from tests.conftest import REPO
from tests.deploy.test_runbook import RUNBOOK, shell_commands
from tests.e2e.celery_tools import Flower, celery
from tests.e2e.stack import MqttPeer, Stack, wait_until, write_agent

pytestmark = pytest.mark.slow


@pytest.fixture
def slow_agent(config_dir: Path, mqtt_url: str, unique_id: str) -> str:
    """An agent whose every task takes 3 s, so others wait on its queue behind the one running."""
    agent_id = f"slow-{unique_id}"
    write_agent(config_dir, agent_id, mqtt_url, llm="delay_s = 3")
    return agent_id


@pytest.fixture
def flower(stack: Stack, tmp_path: Path) -> Iterator[Flower]:
    running = Flower(stack, tmp_path)
    yield running
    running.stop()


def conversation(peer: MqttPeer) -> str:
    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")
    return cid


def start(stack: Stack, peer: MqttPeer, agent_id: str, workers: int = 1, concurrency: str = "20") -> None:
    peer.subscribe(f"/control/agents/{agent_id}/status")
    for _ in range(workers):
        stack.start("worker", "--concurrency", concurrency)
    stack.bridge()
    peer.wait_for_status(agent_id, "available")
    app = control_client(stack)
    wait_until(lambda: len(app.control.inspect(timeout=1, limit=workers).ping() or {}) == workers, 20,
               f"{workers} worker(s) answer remote control")
    app.close()


def control_client(stack: Stack) -> Celery:
    """What `celery -A agent2389` configures from REDIS_URL and AGENT2389_KEY_PREFIX."""
    return create_celery(Settings(redis_url=stack.redis_url, key_prefix=stack.key_prefix))


def test_celery_inspect_ping_finds_every_worker(stack: Stack, peer: MqttPeer, agents: dict[str, str]) -> None:
    start(stack, peer, agents["a"], workers=2)
    ping = celery(stack, "inspect", "ping", "--timeout", "3")
    assert ping.returncode == 0, ping.stderr
    pids = [p.popen.pid for p in stack.processes if p.name.startswith("worker")]
    assert all(f"-{pid}: OK" in ping.stdout for pid in pids), ping.stdout
    assert "2 nodes online" in ping.stdout


def test_a_hundred_inspect_broadcasts_leave_no_key_behind_that_does_not_expire(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], redis_client: redis.Redis, key_prefix: str
) -> None:
    start(stack, peer, agents["a"], workers=2)

    def lasting() -> set[str]:
        return {k for k in redis_client.scan_iter(match=f"{key_prefix}*", count=1000) if redis_client.ttl(k) == -1}

    before = lasting()
    app = control_client(stack)
    replies = [app.control.inspect(timeout=2, limit=2).ping() or {} for _ in range(100)]
    app.close()
    assert [len(r) for r in replies] == [2] * 100
    assert lasting() - before == set()
    assert redis_client.hlen(Keys(key_prefix).celery_prefix() + "unacked") == 0


def test_flower_lists_every_worker_with_its_agent_queues_and_every_task_with_its_outcome(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], flower: Flower
) -> None:
    agent = agents["a"]
    start(stack, peer, agent, workers=2)
    cid = conversation(peer)
    sent = [peer.send_task(agent, cid, f"t{i}")["task_id"] for i in range(4)]
    peer.expect(4)
    workers = wait_until(lambda: len(flower.get("/api/workers?refresh=1")) == 2 and flower.get("/api/workers"),
                         20, "Flower lists both workers")
    for info in workers.values():
        assert sorted(q["name"] for q in info["active_queues"]) == sorted(f"agent.{a}" for a in agents.values())
    tasks = [wait_until(lambda t=t: (flower.task_of(t) or {}).get("state") == "SUCCESS" and flower.task_of(t),
                        20, f"Flower sees task {t} succeed") for t in sent]
    for task, task_id in zip(tasks, sent, strict=True):
        assert task["runtime"] > 0
        assert task["worker"] in workers
        assert task["args"] == f"['{agent}', <task {task_id} of conversation {cid}>]"
        assert "say" not in task["args"] and "t0" not in task["args"], "Flower shows the task's content"
        assert task["result"] == f"'published to /conversations/{cid}/{agent}'"


def test_flower_api_refuses_a_caller_without_its_password(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], flower: Flower
) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        flower.request("GET", "/api/workers", auth=False)
    refused.value.close()
    assert refused.value.code == 401


def test_a_queued_task_revoked_from_flower_ends_with_one_error_and_shows_revoked(
    stack: Stack, peer: MqttPeer, slow_agent: str, flower: Flower
) -> None:
    start(stack, peer, slow_agent, concurrency="1")
    cid = conversation(peer)
    first = peer.send_task(slow_agent, cid, "runs")["task_id"]
    queued = peer.send_task(slow_agent, cid, "waits")["task_id"]
    waiting = wait_until(lambda: flower.task_of(queued), 10, "Flower sees the second task sent")
    flower.get("/api/workers?refresh=1")  # Flower learns which queues there are from the workers
    lengths = {q["name"]: q["messages"] for q in flower.get("/api/queues/length")["active_queues"]}
    assert lengths[f"agent.{slow_agent}"] == 1, "Flower's broker view does not see the waiting task"
    flower.post(f"/api/task/revoke/{waiting['uuid']}")
    answers = {body["task_id"]: body for _, body, _ in peer.expect(2, timeout_s=20)}
    assert "response" in answers[first]
    assert answers[queued]["error"] == {"code": "internal_error", "message": "cancelled by an operator"}
    assert peer.quiet_for(2) == []
    revoked = wait_until(lambda: (flower.task_of(queued) or {}).get("state") == "REVOKED", 10,
                         "Flower shows the revoked task REVOKED")
    assert revoked


def test_revoking_or_terminating_a_running_task_changes_nothing_and_says_so(
    stack: Stack, peer: MqttPeer, slow_agent: str, flower: Flower
) -> None:
    start(stack, peer, slow_agent)
    cid = conversation(peer)
    task_id = peer.send_task(slow_agent, cid, "runs")["task_id"]
    running = wait_until(lambda: (flower.task_of(task_id) or {}).get("state") == "STARTED" and flower.task_of(task_id),
                         10, "the task started")
    revoke = celery(stack, "control", "revoke", running["uuid"])
    assert revoke.returncode == 0, revoke.stderr
    flower.post(f"/api/task/revoke/{running['uuid']}?terminate=true")
    [(_, answer, _)] = peer.expect(1, timeout_s=10)
    assert answer["response"] and answer["task_id"] == task_id
    assert peer.quiet_for(1) == []
    worker = stack.processes[0]
    wait_until(lambda: worker.logged("not stopped and will be answered") and worker.logged("terminate refused"), 10,
               "the worker logs that the running task is not stopped")


def test_growing_a_workers_pool_is_refused_with_a_clear_reply(stack: Stack, peer: MqttPeer,
                                                              agents: dict[str, str]) -> None:
    start(stack, peer, agents["a"])
    grow = celery(stack, "control", "pool_grow", "2")
    assert "threads pool has a fixed size" in grow.stdout + grow.stderr
    wait_until(lambda: stack.processes[0].logged("pool_grow 2 refused"), 10, "the worker logs the refusal")


def test_celery_purge_empties_an_agents_queue_for_good(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], redis_client: redis.Redis, key_prefix: str
) -> None:
    agent = agents["a"]
    peer.subscribe(f"/control/agents/{agent}/status")
    stack.bridge()
    peer.wait_for_status(agent, "unavailable")
    cid = conversation(peer)
    for i in range(3):
        peer.send_task(agent, cid, f"t{i}")
    queue_key = Keys(key_prefix).queue(agent)
    wait_until(lambda: redis_client.llen(queue_key) == 3, 10, "the tasks are on their queue")
    purge = celery(stack, "purge", "-f", "-Q", f"agent.{agent}")
    assert purge.returncode == 0, purge.stderr
    assert "Purged 3 messages" in purge.stdout
    assert redis_client.llen(queue_key) == 0
    assert redis_client.hlen(Keys(key_prefix).celery_prefix() + parked_key(f"agent.{agent}")) == 0
    stack.start("worker")
    peer.wait_for_status(agent, "available")
    assert peer.quiet_for(3) == []


def test_celery_worker_is_refused_with_a_pointer_to_agent2389_worker(stack: Stack) -> None:
    refused = celery(stack, "worker")
    assert refused.returncode != 0
    assert "agent2389 worker --config PATH" in refused.stderr


def test_every_celery_command_of_the_runbook_works_against_a_live_stack(
    stack: Stack, peer: MqttPeer, agents: dict[str, str]
) -> None:
    commands = [c for c in shell_commands(RUNBOOK.read_text(encoding="utf-8")) if "celery -A agent2389" in c]
    one_shot = [c for c in commands if c.startswith("celery") and c.split()[3] in ("inspect", "control", "purge")]
    assert len(one_shot) >= 6 and any(" events " in f"{c} " for c in commands) and any("flower" in c for c in commands)
    start(stack, peer, agents["a"])
    for command in one_shot:
        args = shlex.split(command.replace("agent.echo", f"agent.{agents['a']}"))[3:]
        done = celery(stack, *args)
        assert done.returncode == 0, f"{command}: {done.stdout} {done.stderr}"


def test_celery_events_streams_every_tasks_events_with_its_runtime(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], tmp_path: Path
) -> None:
    agent = agents["a"]
    start(stack, peer, agent)
    dump = tmp_path / "events.txt"
    with dump.open("w") as out:
        events = subprocess.Popen([sys.executable, "-m", "celery", "-A", "agent2389", "events", "--dump"],
                                  env=stack.env(), cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            wait_until(lambda: "heartbeat" in dump.read_text(), 15, "celery events sees a worker heartbeat")
            cid = conversation(peer)
            task_id = peer.send_task(agent, cid)["task_id"]
            peer.expect(1)
            wait_until(lambda: "task succeeded" in dump.read_text(), 10, "celery events sees the task succeed")
        finally:
            events.terminate()
            events.wait(10)
    lines = [line for line in dump.read_text().splitlines() if task_id in line or "task succeeded" in line]
    kinds = {kind for line in lines for kind in ("task sent", "task received", "task started", "task succeeded")
             if kind in line}
    assert kinds == {"task sent", "task received", "task started", "task succeeded"}, lines
    assert any("runtime=" in line for line in lines if "task succeeded" in line), lines
