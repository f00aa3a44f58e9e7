"""Fixtures for the tests of the broker transport: a kombu connection made the way every process makes one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection

from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.state.keys import Keys


@pytest.fixture
def connection(redis_url: str, key_prefix: str) -> Iterator[Connection]:
    app = create_celery(Settings(redis_url=redis_url, key_prefix=key_prefix))
    connection = app.connection_for_write()
    yield connection
    connection.close()


@pytest.fixture
def prefix(key_prefix: str) -> str:
    """Where kombu's keys (queues, unacked, parked) live in Redis."""
    return Keys(key_prefix).celery_prefix()
