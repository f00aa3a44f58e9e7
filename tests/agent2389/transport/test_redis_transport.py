"""The Redis transport on the real Redis: what a worker received before its connection broke still ends well."""

from __future__ import annotations

import redis

from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.state.keys import Keys


def test_a_message_received_before_the_connection_broke_is_acknowledged_afterwards_and_not_handed_back(
    redis_url: str, key_prefix: str, redis_client: redis.Redis
) -> None:
    app = create_celery(Settings(redis_url=redis_url, key_prefix=key_prefix))
    unacked = f"{Keys(key_prefix).celery_prefix()}unacked"
    connection = app.connection_for_write()
    queue = connection.SimpleQueue("reliability-transport")
    queue.put({"n": 1})
    message = queue.get(timeout=5)
    assert redis_client.hlen(unacked) == 1
    # What Celery does on a lost connection: detach the transport, then close the connection.
    connection.collect()
    connection.close()
    assert redis_client.hlen(unacked) == 1, "the held message went back to the queue while still held"
    message.ack()
    assert redis_client.hlen(unacked) == 0
    assert redis_client.llen(f"{Keys(key_prefix).celery_prefix()}reliability-transport") == 0
