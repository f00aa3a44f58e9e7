"""Parked messages on the real Redis: a message taken off its queue by a worker that died is given back, once."""

from __future__ import annotations

import redis
from kombu import Connection, Exchange, Producer, Queue

from agent2389.transport.parking import ParkingSweeper, parked_key

QUEUE = "parking-test"
# The sweep runs by its caller's clock: the tests move it instead of waiting.
T0 = 1_800_000_000.0


def sweeper(redis_client: redis.Redis, prefix: str, grace_s: int) -> ParkingSweeper:
    return ParkingSweeper(redis_client, prefix, grace_s)


def test_a_message_is_parked_while_queued_and_unparked_when_a_worker_records_it(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    assert redis_client.hlen(prefix + parked_key(QUEUE)) == 1
    message = queue.get(timeout=5)
    assert redis_client.hlen(prefix + parked_key(QUEUE)) == 0
    assert redis_client.hlen(prefix + "unacked") == 1
    message.ack()
    assert redis_client.hlen(prefix + "unacked") == 0
    assert redis_client.llen(prefix + QUEUE) == 0


def test_a_message_taken_by_a_worker_that_died_before_recording_it_goes_back_after_the_grace_time(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    # What a worker's BRPOP does, without the worker living on to record it.
    assert redis_client.rpop(prefix + QUEUE) is not None
    sweep = sweeper(redis_client, prefix, grace_s=2)
    assert sweep.sweep(QUEUE, now=T0) == []
    assert redis_client.llen(prefix + QUEUE) == 0
    assert sweep.sweep(QUEUE, now=T0 + 1.9) == []
    assert len(sweep.sweep(QUEUE, now=T0 + 2)) == 1
    assert queue.get(timeout=5).payload == {"n": 1}
    assert sweep.sweep(QUEUE, now=T0 + 3) == []
    assert redis_client.llen(prefix + QUEUE) == 0


def test_a_message_a_live_worker_records_between_two_sweeps_is_not_given_back(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    raw = redis_client.rpop(prefix + QUEUE)
    assert raw is not None
    sweep = sweeper(redis_client, prefix, grace_s=1)
    assert sweep.sweep(QUEUE, now=T0) == []
    # The worker records it (its unacked transaction unparks it): in transit no more.
    [tag] = redis_client.hkeys(prefix + parked_key(QUEUE))
    redis_client.hdel(prefix + parked_key(QUEUE), tag)
    assert sweep.sweep(QUEUE, now=T0 + 5) == []
    assert redis_client.llen(prefix + QUEUE) == 0


def test_a_backlog_waiting_on_its_queue_is_never_given_back_twice(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    for n in range(100):
        queue.put({"n": n})
    redis_client.rpop(prefix + QUEUE)
    sweep = sweeper(redis_client, prefix, grace_s=0)
    assert len(sweep.sweep(QUEUE, now=T0)) == 1
    for later in range(1, 4):
        assert sweep.sweep(QUEUE, now=T0 + later) == []
    assert redis_client.llen(prefix + QUEUE) == 100
    assert sorted(queue.get(timeout=5).payload["n"] for _ in range(100)) == list(range(100))


def test_a_message_handed_back_by_a_worker_is_parked_again(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    queue.get(timeout=5).requeue()
    assert redis_client.llen(prefix + QUEUE) == 1
    assert redis_client.hlen(prefix + parked_key(QUEUE)) == 1
    assert redis_client.hlen(prefix + "unacked") == 0
    assert sweeper(redis_client, prefix, grace_s=0).sweep(QUEUE, now=T0) == []


def test_purging_a_queue_forgets_its_parked_messages(
    connection: Connection, redis_client: redis.Redis, prefix: str
) -> None:
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"n": 1})
    assert queue.clear() == 1
    assert redis_client.hlen(prefix + parked_key(QUEUE)) == 0
    assert sweeper(redis_client, prefix, grace_s=0).sweep(QUEUE, now=T0) == []
    assert redis_client.llen(prefix + QUEUE) == 0


def test_a_remote_control_reply_is_never_parked(connection: Connection, redis_client: redis.Redis,
                                                  prefix: str) -> None:
    # Its caller reads it without acknowledging, so nothing would unpark it: one hash per `inspect`, forever.
    reply_queue = Queue("caller-id.reply.celery.pidbox", Exchange("reply.celery.pidbox", type="direct"),
                        routing_key="caller-id")
    Producer(connection.default_channel).publish({"ok": "pong"}, exchange=reply_queue.exchange,
                                                 routing_key="caller-id", declare=[reply_queue], serializer="json")
    assert redis_client.llen(prefix + reply_queue.name) == 1
    assert redis_client.exists(prefix + parked_key(reply_queue.name)) == 0
