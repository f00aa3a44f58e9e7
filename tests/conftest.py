"""The test vocabulary: real services, isolated keys and topics, and agents made to order.

The fast tier (``make test-fast``) is every test that asks for no real service and is not marked slow:
a test that uses the ``redis_service`` or ``mqtt_service`` fixture, directly or through another fixture
(``redis_url``, ``redis_client``, ``peer``...), is marked ``server`` here, and ``make test-fast`` runs
``-m "not server and not slow"``. Redis logic that needs no server (our Lua scripts included) can run on
fakeredis as well: a module that overrides ``redis_client`` and ``key_prefix`` with ``fake_or_real_redis``
runs each test twice, on fakeredis (fast) and on the real server (``make test``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest
import redis

from agent2389.config import environment
from agent2389.config.settings import DEFAULT_REDIS_URL
from tests import leftover_statuses
from tests.reliability import results
from tests.services import Service, find_or_start, mosquitto_command, redis_command

if TYPE_CHECKING:
    from tests.e2e.stack import MqttPeer

REPO = Path(__file__).resolve().parent.parent
# The fixtures that find or start a real server: a test that depends on one is not in the fast tier.
SERVER_FIXTURES = frozenset({"redis_service", "mqtt_service"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` (make test): the scenarios under load in one worker, one at a time (tests/scheduling.py)."""
    if config.getoption("dist") != "loadgroup":
        return None
    from tests.scheduling import UnderLoadInOneWorker  # here: it imports xdist, which a plain run may lack

    return UnderLoadInOneWorker(config, log)


# Here, not in tests/reliability/conftest.py: under pytest-xdist the process that reports the run collects
# no tests, so it loads this conftest.py only.
LEFTOVERS_BEFORE = pytest.StashKey[dict[str, bytes]]()


def shared_mqtt_url() -> str:
    return environment.value(environment.MQTT_URL, "mqtt://127.0.0.1:1883")


def pytest_sessionstart(session: pytest.Session) -> None:
    # In the run's own process only: an xdist worker's session is one part of the run.
    if not hasattr(session.config, "workerinput"):
        before = leftover_statuses.retained_statuses(shared_mqtt_url())
        if before is not None:
            session.config.stash[LEFTOVERS_BEFORE] = before


def pytest_sessionfinish(session: pytest.Session) -> None:
    if LEFTOVERS_BEFORE in session.config.stash:
        leftover_statuses.clear_new_unavailable(shared_mqtt_url(), session.config.stash[LEFTOVERS_BEFORE])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    results.collect(report.user_properties)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if results.session_records:
        terminalreporter.write_sep("-", "reliability measurements")
        terminalreporter.write_line(results.table(results.session_records))


@pytest.fixture(scope="session")
def redis_service() -> Iterator[Service]:
    service = find_or_start("redis", environment.value(environment.REDIS_URL, DEFAULT_REDIS_URL), "redis-server",
                            redis_command)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def mqtt_service() -> Iterator[Service]:
    service = find_or_start("mosquitto", shared_mqtt_url(), "mosquitto", mosquitto_command)
    yield service
    service.stop()


@pytest.fixture
def redis_url(redis_service: Service) -> str:
    return f"redis://{redis_service.host}:{redis_service.port}/0"


@pytest.fixture
def mqtt_url(mqtt_service: Service) -> str:
    return f"mqtt://{mqtt_service.host}:{mqtt_service.port}"


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"agent2389-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_client(redis_url: str, key_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def unique_id() -> str:
    """Agent ids are part of MQTT topics on a shared broker: each test gets names of its own."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def peer(mqtt_url: str) -> Iterator[MqttPeer]:
    """A plain MQTT 5 client on the test broker, playing the other agents (tests/e2e/stack.py)."""
    from tests.e2e.stack import MqttPeer  # here: tests.e2e.stack imports this module

    client = MqttPeer(mqtt_url)
    yield client
    client.close()


@dataclass
class RedisUnderTest:
    client: redis.Redis
    prefix: str


@pytest.fixture(params=[pytest.param("fakeredis"), pytest.param("redis", marks=pytest.mark.server)])
def fake_or_real_redis(request: pytest.FixtureRequest) -> Iterator[RedisUnderTest]:
    """A client (decoding responses) and a key prefix of this test's own, on fakeredis, then on the real Redis."""
    if request.param == "fakeredis":
        client: redis.Redis = fakeredis.FakeRedis(decode_responses=True)
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    prefix = f"agent2389-test-{uuid.uuid4().hex[:12]}"
    yield RedisUnderTest(client, prefix)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
