"""The dispatcher on the real Redis ledger, with the MQTT side and the queue played by recorders."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import paho.mqtt.client as paho
import redis

from agent2389.config import AgentConfig
from agent2389.envelope import TaskEnvelope
from agent2389.keys import Keys
from agent2389.ledger import TaskLedger
from agent2389.stats import StatsRecorder
from bridge.dispatcher import Dispatcher

AGENT = AgentConfig.model_validate({"agent": {"id": "a"}})


class Published:
    def __init__(self) -> None:
        self.rc = paho.MQTT_ERR_SUCCESS

    def wait_for_publish(self, timeout: float) -> None: ...

    def is_published(self) -> bool:
        return True


class FakeLink:
    agent = AGENT

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.errors: list[tuple[str, Any]] = []

    def ack(self, message: paho.MQTTMessage) -> None:
        self.acked.append(message.mid)

    def publish_error(self, topic: str, error: Any) -> Published:
        self.errors.append((topic, error))
        return Published()


class FlakyEnqueuer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    def enqueue(self, agent_id: str, envelope: TaskEnvelope) -> str:
        if self.failures:
            self.failures -= 1
            raise redis.ConnectionError("Redis is down")
        self.sent.append(envelope.task_id)
        return "celery-id"


def message(mid: int, task_id: str) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(mid, b"/control/agents/a/input")
    msg.payload = json.dumps({"task_id": task_id, "conversation_id": "c", "topic": "/control/agents/a/input",
                              "input": "x"}).encode()
    msg.qos = 1
    return msg


def dispatcher(redis_client: redis.Redis, key_prefix: str, enqueuer: FlakyEnqueuer) -> tuple[Dispatcher, FakeLink]:
    keys = Keys(key_prefix)
    link = FakeLink()
    return Dispatcher(link, TaskLedger(redis_client, keys), enqueuer, StatsRecorder(redis_client, keys)), link  # type: ignore[arg-type]


def test_a_task_is_acknowledged_only_after_the_enqueue_finally_succeeds(redis_client: redis.Redis,
                                                                        key_prefix: str) -> None:
    enqueuer = FlakyEnqueuer(failures=2)
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer)
    dispatch.start()
    task_id = str(uuid.uuid4())
    dispatch.submit(link, message(7, task_id))  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while not link.acked and time.monotonic() < deadline:
        time.sleep(0.05)
    dispatch.stop()
    assert enqueuer.sent == [task_id] and link.acked == [7]


def test_a_duplicate_is_acknowledged_and_not_enqueued(redis_client: redis.Redis, key_prefix: str) -> None:
    enqueuer = FlakyEnqueuer(failures=0)
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer)
    task_id = str(uuid.uuid4())
    dispatch.handle(message(1, task_id))
    dispatch.handle(message(2, task_id))
    assert enqueuer.sent == [task_id] and link.acked == [1, 2]


def test_a_delivery_claimed_by_a_bridge_that_died_waits_for_the_claim_and_is_then_processed(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    task_id = str(uuid.uuid4())
    ledger = TaskLedger(redis_client, Keys(key_prefix))
    fingerprint = TaskEnvelope.model_validate(json.loads(message(1, task_id).payload)).pipeline_fingerprint()
    assert ledger.claim(fingerprint) == "new"  # the dead bridge's claim, never confirmed
    enqueuer = FlakyEnqueuer(failures=0)
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer)
    dispatch.start()
    dispatch.submit(link, message(3, task_id))  # type: ignore[arg-type]
    time.sleep(1.0)
    assert link.acked == [] and enqueuer.sent == []
    redis_client.delete(Keys(key_prefix).ledger(fingerprint))  # as if the claim expired
    deadline = time.monotonic() + 10
    while not link.acked and time.monotonic() < deadline:
        time.sleep(0.05)
    dispatch.stop()
    assert enqueuer.sent == [task_id] and link.acked == [3]
