"""The one way agent2389 connects to Redis: short time-outs, so a dead Redis is an error, never a hang.

How short depends on the caller's role: a bridge or worker rides out a slow second, a health check must
answer in well under one. Celery's own connections are configured in agent2389.celery_app.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agent2389.config.settings import Settings

# Connections one process keeps at most, unless it says how many threads share its client. redis-py's
# default pool raised MaxConnectionsError when more threads than connections were between a command and its
# reply at once; a blocking pool makes a thread wait for a free connection instead (up to pool_wait_s).
MAX_CONNECTIONS = 64


@dataclass(frozen=True)
class RedisRole:
    """How long a kind of caller waits for Redis, in seconds."""

    socket_timeout_s: float
    connect_timeout_s: float
    # Longest wait for a free connection of the pool.
    pool_wait_s: float
    health_check_interval_s: int
    decode_responses: bool = False


# Bridge, workers and ``up``: many threads on one client, bytes in and out.
SERVICE = RedisRole(socket_timeout_s=5, connect_timeout_s=3, pool_wait_s=5, health_check_interval_s=15)
# The web app, ``status`` and ``inspect``: a health check must report a dead Redis, not wait for it.
INSPECTION = RedisRole(socket_timeout_s=0.5, connect_timeout_s=0.5, pool_wait_s=0.5, health_check_interval_s=10,
                       decode_responses=True)


def probe_role(timeout_s: float) -> RedisRole:
    """``agent2389 health --timeout``: the caller says how long it may take."""
    return RedisRole(socket_timeout_s=timeout_s, connect_timeout_s=timeout_s, pool_wait_s=timeout_s,
                     health_check_interval_s=0)


def connect_redis(settings: Settings, role: RedisRole = SERVICE, max_connections: int = MAX_CONNECTIONS
                  ) -> redis.Redis:
    """A client whose pool opens up to ``max_connections`` connections, as threads need them."""
    # One immediate retry covers a dropped idle connection; callers (the bridge's intake, a worker's
    # task hand-back) own the longer waits, so redis-py's own backoff would only add seconds per call.
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=role.pool_wait_s,
        socket_timeout=role.socket_timeout_s,
        socket_connect_timeout=role.connect_timeout_s,
        health_check_interval=role.health_check_interval_s,
        retry=Retry(NoBackoff(), 1),
        decode_responses=role.decode_responses,
    )
    return redis.Redis(connection_pool=pool)
