"""``[llm] max_concurrency`` across real worker processes: the fake Anthropic API never sees more calls
of the agent at once than the limit, however many worker threads have its tasks."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from fakes import anthropic_api
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Delay, Text
from tests.e2e.stack import MqttPeer, Stack
from workers.llm.limiter import LEASE_S, POLL_S

fake_anthropic = anthropic_api.fake_anthropic
pytestmark = pytest.mark.slow  # three workers import the Anthropic SDK: several seconds each
TASKS = 200
LIMIT = 5


@pytest.fixture
def agents(unique_id: str) -> dict[str, str]:
    return {"limited": f"limited-{unique_id}"}


@pytest.fixture
def config_dir(tmp_path: Path, agents: dict[str, str], mqtt_url: str, fake_anthropic: FakeAnthropic) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    (directory / "limited.toml").write_text(
        f'[agent]\nid = "{agents["limited"]}"\n'
        f'[mqtt]\nbroker_url = "{mqtt_url}"\n'
        f'[llm]\nprovider = "anthropic"\nmodel = "claude-haiku-5-5"\nbase_url = "{fake_anthropic.url}"\n'
        f'api_key_env = "{API_KEY_ENV}"\nmax_retries = 0\ntimeout_s = 30\nmax_concurrency = {LIMIT}\n'
    )
    return directory


def test_three_workers_never_make_more_calls_at_once_than_max_concurrency(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    agent = agents["limited"]
    fake_anthropic.respond(lambda request: Delay(0.05, Text(f"done: {request['messages'][0]['content']}")))
    peer.subscribe(f"/control/agents/{agent}/status")
    for _ in range(3):
        stack.worker()
    stack.bridge()
    peer.wait_for_status(agent, "available", timeout_s=40)
    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")

    sent = [peer.send_task(agent, cid, f"task {n}")["task_id"] for n in range(TASKS)]

    answers = peer.expect(TASKS, timeout_s=50)
    assert sorted(body["task_id"] for _, body, _ in answers) == sorted(sent)
    assert all("response" in body for _, body, _ in answers)
    assert peer.quiet_for(0.5) == []
    assert len(fake_anthropic.message_requests()) == TASKS
    assert fake_anthropic.peak_in_flight == LIMIT


@pytest.mark.timeout(120)
def test_a_worker_killed_while_holding_slots_gives_them_back_and_the_rest_finish(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    agent = agents["limited"]
    fake_anthropic.respond(lambda request: Delay(0.3, Text(f"done: {request['messages'][0]['content']}")))
    peer.subscribe(f"/control/agents/{agent}/status")
    workers = [stack.worker() for _ in range(2)]
    stack.bridge()
    peer.wait_for_status(agent, "available", timeout_s=40)
    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")
    sent = [peer.send_task(agent, cid, f"task {n}")["task_id"] for n in range(150)]
    first = peer.expect(5, timeout_s=20)

    workers[0].signal(signal.SIGKILL)
    # Past the dead worker's leases (6 s) and a waiter's next poll: its slots must be back in use by now.
    time.sleep(LEASE_S + 2 * POLL_S)
    with fake_anthropic._lock:
        fake_anthropic.peak_in_flight = fake_anthropic.in_flight

    answered = [body["task_id"] for _, body, _ in first]
    while set(answered) != set(sent):
        answered += [body["task_id"] for _, body, _ in peer.expect(1, timeout_s=50)]
    answered += [body["task_id"] for _, body, _ in peer.quiet_for(1.0)]
    assert fake_anthropic.peak_in_flight == LIMIT  # all five slots in use again: none was lost with the worker
    # Every task answered; at most the answers the killed worker had just published come twice, the
    # known duplicate of a worker killed between its PUBACK and its ledger (docs/reliability.md).
    assert len(answered) - len(sent) <= LIMIT
