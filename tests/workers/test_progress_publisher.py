"""Progress events leave through the worker's MQTT connection, and never hold a task up: not when the
broker is gone, not when they come faster than they can be sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agent2389.config.agent import MqttSection
from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from fakes import anthropic_api
from fakes.anthropic_api import FakeAnthropic
from fakes.anthropic_replies import Text, ToolUse, tool_calls
from tests.e2e.stack import MqttPeer, wait_until
from tests.reliability.private_services import PrivateService, private_mosquitto
from tests.workers.llm.agents import agent_for
from tests.workers.tools.sample_tools import SAMPLE
from workers.llm.anthropic_runner import AnthropicRunner
from workers.llm.base import TaskRequest
from workers.progress import TaskProgress
from workers.progress_publisher import QUEUE_SIZE, ProgressPublisher
from workers.publisher import Publisher

fake_anthropic = anthropic_api.fake_anthropic


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[PrivateService]:
    broker = private_mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


def connected_publisher(mqtt_url: str) -> Publisher:
    publisher = Publisher(MqttSection(broker_url=mqtt_url))
    publisher.start()
    assert publisher.connected.wait(10), "the worker's publisher did not connect"
    return publisher


def test_events_reach_the_broker_at_qos_0_and_not_retained(mqtt_url: str, unique_id: str) -> None:
    peer = MqttPeer(mqtt_url)
    peer.subscribe(f"/control/agents/p-{unique_id}/progress/#")
    publisher = connected_publisher(mqtt_url)
    progress = ProgressPublisher(publisher.client, publisher.connected)
    progress.start()
    try:
        TaskProgress(progress, f"p-{unique_id}", "t", "c").llm_request(1, "m", 0)
        [(topic, body, retained)] = peer.expect(1)
    finally:
        progress.stop()
        publisher.stop()
        peer.close()
    assert topic == f"/control/agents/p-{unique_id}/progress/llm" and not retained
    assert body["event_type"] == "LlmRequest" and progress.dropped == 0


def test_with_the_broker_gone_a_task_runs_as_fast_and_its_events_are_dropped_and_counted(
    own_broker: PrivateService, fake_anthropic: FakeAnthropic, redis_client: redis.Redis, key_prefix: str
) -> None:
    publisher = connected_publisher(f"mqtt://127.0.0.1:{own_broker.port}")
    stats = StatsRecorder(redis_client, Keys(key_prefix))
    progress = ProgressPublisher(publisher.client, publisher.connected, stats)
    progress.start()
    own_broker.stop()
    wait_until(lambda: not publisher.connected.is_set(), 10, "the publisher noticed the broker was gone")
    fake_anthropic.reply(tool_calls(ToolUse("echo", {"text": "x"})), Text("done"))
    agent = agent_for(fake_anthropic, tools={"echo": {"impl": SAMPLE + "EchoTool"}})
    runner = AnthropicRunner(agent)
    slowest = 0.0

    class Timed:
        def emit(self, topic: str, payload: str) -> None:
            nonlocal slowest
            started = time.perf_counter()
            progress.emit(topic, payload)
            slowest = max(slowest, time.perf_counter() - started)

    try:
        answer = runner.run(TaskRequest(agent, "t-1", "c-1", None, "hi",
                                        progress=TaskProgress(Timed(), agent.id, "t-1", "c-1")))
    finally:
        runner.close()
        progress.stop()
        publisher.stop()

    assert answer == "done"
    assert slowest < 0.05
    assert progress.dropped == 6  # two LLM calls (request, response) and one tool call (call, complete)
    assert int(redis_client.hget(Keys(key_prefix).mqtt_stats(), "progress_events_dropped") or 0) == 6


def test_events_that_come_faster_than_they_leave_are_dropped_not_waited_for() -> None:
    never_sends = ProgressPublisher(client=None, connected=threading.Event())  # type: ignore[arg-type]
    started = time.perf_counter()
    for _ in range(QUEUE_SIZE + 5):
        never_sends.emit("/control/agents/a/progress", "{}")
    assert time.perf_counter() - started < 2
    assert never_sends.dropped == 5

