"""The Redis client every process uses: short time-outs, so a dead Redis is an error, never a hang."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agent2389.settings import Settings


def connect_redis(settings: Settings) -> redis.Redis:
    # One immediate retry covers a dropped idle connection; callers (the bridge's intake, a worker's
    # task hand-back) own the longer waits, so redis-py's own backoff would only add seconds per call.
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 1),
    )
