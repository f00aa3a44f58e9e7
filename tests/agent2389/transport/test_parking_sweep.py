"""The parking sweep's Lua on plain keys, by the caller's clock: on fakeredis (the fast tier) and the real Redis."""

from __future__ import annotations

import json

import pytest
import redis

from agent2389.transport.parking import ParkingSweeper, parked_key, suspects_key
from tests.conftest import RedisUnderTest

QUEUE = "sweep-test"
T0 = 1_800_000_000.0


@pytest.fixture
def client(fake_or_real_redis: RedisUnderTest) -> redis.Redis:
    return fake_or_real_redis.client


@pytest.fixture
def prefix(fake_or_real_redis: RedisUnderTest) -> str:
    return fake_or_real_redis.prefix + ":"


def push(client: redis.Redis, prefix: str, tag: str) -> str:
    """What a producer does: park the message and push it, in one transaction."""
    payload = json.dumps({"properties": {"delivery_tag": tag}})
    pipe = client.pipeline(transaction=True)
    pipe.hset(prefix + parked_key(QUEUE), tag, payload)
    pipe.lpush(prefix + QUEUE, payload)
    pipe.execute()
    return payload


def test_a_message_in_transit_longer_than_the_grace_time_goes_back_once(client: redis.Redis, prefix: str) -> None:
    payload = push(client, prefix, "tag-1")
    client.rpop(prefix + QUEUE)  # taken by a worker that died before recording it
    sweeper = ParkingSweeper(client, prefix, grace_s=6)

    assert sweeper.sweep(QUEUE, now=T0) == []
    assert sweeper.sweep(QUEUE, now=T0 + 5.9) == []
    assert sweeper.sweep(QUEUE, now=T0 + 6) == ["tag-1"]
    assert client.lrange(prefix + QUEUE, 0, -1) == [payload]
    assert sweeper.sweep(QUEUE, now=T0 + 60) == []
    assert client.llen(prefix + QUEUE) == 1


def test_a_message_waiting_on_its_queue_is_never_given_back(client: redis.Redis, prefix: str) -> None:
    push(client, prefix, "tag-1")
    sweeper = ParkingSweeper(client, prefix, grace_s=0)

    for later in range(3):
        assert sweeper.sweep(QUEUE, now=T0 + later) == []
    assert client.llen(prefix + QUEUE) == 1
    assert client.exists(prefix + suspects_key(QUEUE)) == 0


def test_a_message_recorded_between_two_sweeps_is_forgotten_not_given_back(client: redis.Redis, prefix: str) -> None:
    push(client, prefix, "tag-1")
    push(client, prefix, "tag-2")
    client.rpop(prefix + QUEUE)  # tag-1, in transit
    sweeper = ParkingSweeper(client, prefix, grace_s=6)
    assert sweeper.sweep(QUEUE, now=T0) == []
    assert client.hkeys(prefix + suspects_key(QUEUE)) == ["tag-1"]

    client.hdel(prefix + parked_key(QUEUE), "tag-1")  # the worker recorded it: unparked
    assert sweeper.sweep(QUEUE, now=T0 + 60) == []
    assert client.llen(prefix + QUEUE) == 1
