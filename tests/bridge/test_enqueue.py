"""The enqueuer on the real Redis: tasks land on their agent's Celery queue, in order."""

from __future__ import annotations

import json
import uuid

import redis

from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.protocol.envelope import TaskEnvelope
from agent2389.state.keys import Keys
from bridge.enqueue import Enqueuer, celery_task_id


def envelope(task_id: str) -> TaskEnvelope:
    return TaskEnvelope.model_validate({"task_id": task_id, "conversation_id": "c",
                                        "topic": "/control/agents/a/input", "input": "x"})


def queued_ids(redis_client: redis.Redis, keys: Keys) -> list[str]:
    """Celery ids in the order a worker takes them (kombu pushes on the left and pops on the right)."""
    return [json.loads(m)["headers"]["id"] for m in reversed(redis_client.lrange(keys.queue("a"), 0, -1))]


def test_a_batch_of_tasks_is_queued_in_order_and_reported_one_by_one(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    app = create_celery(Settings(redis_url=redis_url, key_prefix=key_prefix))
    envelopes = [envelope(str(uuid.uuid4())) for _ in range(5)]
    reported: list[tuple[int, str]] = []
    Enqueuer(app).enqueue_many("a", envelopes, lambda position, celery_id: reported.append((position, celery_id)))
    expected = [celery_task_id(e.pipeline_fingerprint()) for e in envelopes]
    assert reported == list(enumerate(expected))
    assert queued_ids(redis_client, Keys(key_prefix)) == expected
    app.close()
