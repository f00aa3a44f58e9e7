"""Batch fetching on the real Redis: a backlog is taken several messages at a time, each recorded as taken."""

from __future__ import annotations

import contextlib
import time

import redis
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue

from agent2389.transport.fetching import FETCH_BATCH, BatchFetcher
from agent2389.transport.parking import parked_key

QUEUE = "fetching-test"


def publish(connection: Connection, count: int) -> Queue:
    queue = Queue(QUEUE, Exchange(QUEUE, type="direct"), routing_key=QUEUE)
    producer = Producer(connection.default_channel)
    for n in range(count):
        producer.publish({"n": n}, exchange=queue.exchange, routing_key=QUEUE, declare=[queue], serializer="json")
    return queue


def consume(connection: Connection, queue: Queue, prefetch: int, until: int, within_s: float = 10) -> list[Message]:
    """What the consumer received once it had ``until`` messages, or after ``within_s``."""
    received: list[Message] = []
    channel = connection.channel()
    with Consumer(channel, [queue], callbacks=[lambda body, message: received.append(message)],
                  prefetch_count=prefetch, accept=["json"]):
        deadline = time.monotonic() + within_s
        while len(received) < until and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.5)
    return received


def test_a_backlog_is_received_whole_each_message_once_and_recorded_as_unacknowledged(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = publish(connection, 25)
    received = consume(connection, queue, prefetch=100, until=25)
    assert sorted(m.payload["n"] for m in received) == list(range(25))
    assert redis_client.llen(prefix + QUEUE) == 0
    assert redis_client.hlen(prefix + parked_key(QUEUE)) == 0
    assert redis_client.hlen(prefix + "unacked") == 25
    assert redis_client.zcard(prefix + "unacked_index") == 25
    for message in received:
        message.ack()
    assert redis_client.hlen(prefix + "unacked") == 0
    assert redis_client.zcard(prefix + "unacked_index") == 0


def test_one_round_trip_takes_the_first_message_and_up_to_ten_more_waiting_behind_it(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = publish(connection, 25)
    received: list[Message] = []
    with Consumer(connection.channel(), [queue], callbacks=[lambda body, message: received.append(message)],
                  prefetch_count=100, accept=["json"]):
        connection.drain_events(timeout=5)
    assert [m.payload["n"] for m in received] == list(range(1 + FETCH_BATCH))
    assert redis_client.llen(prefix + QUEUE) == 25 - 1 - FETCH_BATCH


def test_a_consumer_never_takes_more_than_its_prefetch_allows(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = publish(connection, 10)
    # A consumer that took too much would get it in the batch of its first fetch: two seconds show it.
    received = consume(connection, queue, prefetch=3, until=10, within_s=2)
    assert len(received) == 3
    assert redis_client.llen(prefix + QUEUE) == 7
    assert redis_client.hlen(prefix + "unacked") == 3


def test_a_message_taken_in_a_batch_goes_back_to_its_queue_when_handed_back(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = publish(connection, 5)
    received = consume(connection, queue, prefetch=10, until=5)
    for message in received:
        message.requeue()
    assert redis_client.llen(prefix + QUEUE) == 5
    assert redis_client.hlen(prefix + "unacked") == 0
    assert redis_client.hlen(prefix + parked_key(QUEUE)) == 5


def test_something_on_a_queue_that_is_not_a_message_is_left_where_it_was(
    redis_client: redis.Redis, prefix: str
) -> None:
    redis_client.rpush(prefix + QUEUE, "not json")
    fetcher = BatchFetcher(redis_client, prefix, "unacked", "unacked_index")
    assert fetcher.fetch([QUEUE], 5, time.time()) == []
    assert redis_client.lrange(prefix + QUEUE, 0, -1) == ["not json"]
    assert redis_client.hlen(prefix + "unacked") == 0


def test_a_queue_consumed_without_acknowledgements_is_never_recorded_as_unacknowledged(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    # How `celery inspect` and Flower read remote-control replies: nothing would ever acknowledge them.
    queue = publish(connection, FETCH_BATCH + 5)
    received: list[Message] = []
    channel = connection.channel()
    with Consumer(channel, [queue], callbacks=[lambda body, message: received.append(message)], no_ack=True,
                  accept=["json"]):
        deadline = time.monotonic() + 10
        while len(received) < FETCH_BATCH + 5 and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.5)
    assert len(received) == FETCH_BATCH + 5
    assert redis_client.hlen(prefix + "unacked") == 0
    assert redis_client.zcard(prefix + "unacked_index") == 0
