"""The Redis client every process uses: short time-outs, so a dead Redis is an error, never a hang."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agent2389.config.settings import Settings

# Connections one process keeps at most. A worker runs hundreds of threads on one client; redis-py's
# default pool (100 connections) raised MaxConnectionsError when more of them than that were between a
# command and its reply at once (bursts of a fan-in run), failing tasks after their answer was published.
# A blocking pool makes a thread wait for a free connection instead (commands take well under 1 ms).
MAX_CONNECTIONS = 64
CONNECTION_WAIT_S = 5


def connect_redis(settings: Settings) -> redis.Redis:
    # One immediate retry covers a dropped idle connection; callers (the bridge's intake, a worker's
    # task hand-back) own the longer waits, so redis-py's own backoff would only add seconds per call.
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=MAX_CONNECTIONS,
        timeout=CONNECTION_WAIT_S,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 1),
    )
    return redis.Redis(connection_pool=pool)
