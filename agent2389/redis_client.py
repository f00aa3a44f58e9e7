"""The Redis client every process uses: short time-outs, so a dead Redis is an error, never a hang."""

from __future__ import annotations

import redis

from agent2389.settings import Settings


def connect_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=15,
        retry_on_timeout=True,
    )
