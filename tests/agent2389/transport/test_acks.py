"""Acknowledgements in a worker's event loop: the acks of one turn of the loop reach Redis together."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from kombu import Connection
from kombu.asynchronous import Hub, set_event_loop

QUEUE = "acks-test"


@pytest.fixture
def event_loop() -> Iterator[Hub]:
    hub = Hub()
    set_event_loop(hub)
    yield hub
    set_event_loop(None)
    hub.close()


def test_acks_made_in_one_turn_of_the_event_loop_reach_redis_at_its_end(
    connection: Connection, redis_client: redis.Redis, prefix: str, event_loop: Hub
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    queue.put({"n": 2})
    first, second = queue.get(timeout=5), queue.get(timeout=5)
    first.ack()
    second.ack()
    assert redis_client.hlen(prefix + "unacked") == 2
    event_loop.run_once()
    assert redis_client.hlen(prefix + "unacked") == 0
    assert redis_client.zcard(prefix + "unacked_index") == 0


def test_acks_still_waiting_for_the_loop_are_written_when_the_channel_closes(
    connection: Connection, redis_client: redis.Redis, prefix: str, event_loop: Hub
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    queue.get(timeout=5).ack()
    assert redis_client.hlen(prefix + "unacked") == 1
    queue.close()
    connection.default_channel.close()
    assert redis_client.hlen(prefix + "unacked") == 0


def test_outside_an_event_loop_an_ack_is_written_at_once(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    queue.get(timeout=5).ack()
    assert redis_client.hlen(prefix + "unacked") == 0
