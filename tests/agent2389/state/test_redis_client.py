"""The one Redis client factory: many threads at once, as in a worker with hundreds of them, and the time-outs
of each role."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from agent2389.config.settings import Settings
from agent2389.state.redis_client import INSPECTION, MAX_CONNECTIONS, SERVICE, RedisRole, connect_redis, probe_role
from tests.services import free_port


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


@pytest.mark.parametrize(("role", "timeouts", "decoded"), [
    (SERVICE, (5, 3), False), (INSPECTION, (0.5, 0.5), True), (probe_role(2.0), (2.0, 2.0), False),
])
def test_each_role_gets_its_time_outs_and_answers_in_its_own_type(
    redis_url: str, key_prefix: str, role: RedisRole, timeouts: tuple[float, float], decoded: bool
) -> None:
    client = connect_redis(Settings(redis_url=redis_url, key_prefix=key_prefix), role)
    client.set(f"{key_prefix}:greeting", "hello")
    assert client.get(f"{key_prefix}:greeting") == ("hello" if decoded else b"hello")
    connection = client.connection_pool.get_connection()
    try:
        assert (connection.socket_timeout, connection.socket_connect_timeout) == timeouts
    finally:
        client.connection_pool.release(connection)
        client.close()


def test_an_inspection_client_gives_up_on_a_dead_redis_at_once_without_backoff() -> None:
    client = connect_redis(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"), INSPECTION)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - started < 2
