"""Celery's task-sent events of a batch of sends leave as one ``task.multi`` message (real Redis)."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from typing import Any

import pytest
import redis

from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.protocol.envelope import TaskEnvelope
from bridge.enqueue import Enqueuer, celery_task_id
from bridge.sent_events import SentEventsPublisher


def envelope() -> TaskEnvelope:
    return TaskEnvelope.model_validate({"task_id": str(uuid.uuid4()), "conversation_id": "c",
                                        "topic": "/control/agents/a/input", "input": "x"})


def event_messages(pubsub: redis.client.PubSub, key_prefix: str, timeout_s: float = 2.0) -> list[Any]:
    """Bodies of the Celery event messages published under ``key_prefix`` until ``timeout_s`` passes quietly."""
    bodies: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "pmessage" and message["channel"].startswith(key_prefix):
            wire = json.loads(message["data"])
            bodies.append(json.loads(base64.b64decode(wire["body"])))
    return bodies


def test_a_batch_of_tasks_tells_its_task_sent_events_in_one_message_in_the_order_sent(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    app = create_celery(Settings(redis_url=redis_url, key_prefix=key_prefix))
    pubsub = redis_client.pubsub()
    pubsub.psubscribe(f"{key_prefix}*celeryev/task.*")
    envelopes = [envelope() for _ in range(5)]
    Enqueuer(app).enqueue_many("a", envelopes, lambda position, celery_id: None)
    messages = event_messages(pubsub, key_prefix)
    pubsub.close()
    app.close()
    assert len(messages) == 1, messages
    events = messages[0]
    assert [e["type"] for e in events] == ["task-sent"] * 5
    assert [e["uuid"] for e in events] == [celery_task_id(e.pipeline_fingerprint()) for e in envelopes]
    assert {e["queue"] for e in events} == {"agent.a"}
    clocks = [e["clock"] for e in events]
    assert clocks == sorted(clocks) and len(set(clocks)) == 5
    assert all("x" not in e["args"] for e in events)  # the task's input never leaves in an event


def test_one_task_sent_alone_tells_its_event_as_celery_does(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    app = create_celery(Settings(redis_url=redis_url, key_prefix=key_prefix))
    pubsub = redis_client.pubsub()
    pubsub.psubscribe(f"{key_prefix}*celeryev/task.*")
    task = envelope()
    Enqueuer(app).enqueue("a", task)
    messages = event_messages(pubsub, key_prefix)
    pubsub.close()
    app.close()
    assert [(m["type"], m["uuid"]) for m in messages] == [("task-sent", celery_task_id(task.pipeline_fingerprint()))]


class BrokenProducer:
    def publish(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Redis went away")


def test_events_that_cannot_be_published_are_logged_and_change_nothing_for_the_tasks(
    redis_url: str, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_celery(Settings(redis_url=redis_url, key_prefix=key_prefix))
    events = SentEventsPublisher(app).batch()
    events.publish("task-sent", {"uuid": "u"}, None)
    with caplog.at_level(logging.WARNING, logger="agent2389.bridge.sent_events"):
        events.flush(BrokenProducer())
    app.close()
    assert "could not publish 1 task-sent event(s) (ConnectionError)" in caplog.text
