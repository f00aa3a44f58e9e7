"""Lease renewal: a live worker keeps the tasks it holds from being handed to another worker.

kombu gives a delivered message back to its queue once it has been unacknowledged for longer than the
visibility timeout, measured from the score of its delivery tag in the ``unacked_index`` sorted set. A
worker that refreshes those scores for every task it still holds keeps them for as long as it lives, so
the timeout can be short (fast recovery after a crash) while tasks run for as long as they need.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from agent2389.transport.layout import UNACKED_INDEX


def renew_leases(client: redis.Redis, celery_prefix: str, delivery_tags: Iterable[str]) -> None:
    tags = dict.fromkeys(delivery_tags, time.time())
    if tags:
        # XX: renew only what is still unacknowledged; never bring an acknowledged task back.
        client.zadd(celery_prefix + UNACKED_INDEX, tags, xx=True)
