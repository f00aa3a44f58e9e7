"""The shared Redis client under many threads at once, as in a worker with hundreds of them."""

from __future__ import annotations

import threading

import redis

from agent2389.config.settings import Settings
from agent2389.state.redis_client import MAX_CONNECTIONS, connect_redis


def test_more_threads_than_connections_wait_for_one_instead_of_failing(redis_url: str, key_prefix: str) -> None:
    client = connect_redis(Settings(redis_url=redis_url, key_prefix=key_prefix))
    errors: list[Exception] = []

    def hold_a_connection() -> None:
        try:
            # A blocking pop on an empty list holds its connection for the whole timeout.
            client.blpop([f"{key_prefix}:empty"], timeout=0.5)
        except redis.RedisError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hold_a_connection) for _ in range(2 * MAX_CONNECTIONS + 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert client.connection_pool.max_connections == MAX_CONNECTIONS
    client.close()


def test_the_client_keeps_its_short_time_outs_and_single_retry(redis_url: str, key_prefix: str) -> None:
    client = connect_redis(Settings(redis_url=redis_url, key_prefix=key_prefix))
    assert client.ping()
    connection = client.connection_pool.get_connection()
    try:
        assert (connection.socket_timeout, connection.socket_connect_timeout) == (5, 3)
        assert connection.retry.get_retries() == 1
        assert connection.health_check_interval == 15
    finally:
        client.connection_pool.release(connection)
        client.close()
