"""Fixtures of the reliability suite: services of its own to break, the processes, the scale of the run.

``pytest tests/reliability`` runs every scenario at a small scale (the CI subset, about two minutes);
``RELIABILITY_FULL=1 pytest tests/reliability`` runs them at the issue's scale, soak included.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import write_agent
from tests.reliability.peer import LoadPeer
from tests.reliability.private_services import PrivateService, private_mosquitto, private_redis
from tests.reliability.results import FULL, take_unreported
from tests.reliability.system import FaultStack


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    skip = pytest.mark.skip(reason="full reliability run only: set RELIABILITY_FULL=1")
    for item in items:
        if "reliability_full" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """The scenario's numbers go with its test report (to the summary of tests/conftest.py, across xdist)."""
    report = yield
    report.user_properties.extend(take_unreported())
    return report


@dataclass(frozen=True)
class Scale:
    """How big each scenario is: the issue's numbers in a full run, small ones in CI."""

    full: bool
    in_flight: int
    burst: int
    fuzz_examples: int
    fuzz_wire_messages: int
    quiet_s: float


@pytest.fixture(scope="session")
def scale() -> Scale:
    if FULL:
        return Scale(full=True, in_flight=50, burst=200, fuzz_examples=5000, fuzz_wire_messages=2000, quiet_s=5)
    return Scale(full=False, in_flight=20, burst=60, fuzz_examples=400, fuzz_wire_messages=150, quiet_s=2)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PrivateService]:
    service = private_redis(tmp_path / "redis")
    service.start()
    yield service
    service.stop()


@pytest.fixture
def own_redis_stopped(tmp_path: Path) -> Iterator[PrivateService]:
    """A Redis of this test's own, not yet started."""
    service = private_redis(tmp_path / "redis")
    yield service
    service.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[PrivateService]:
    """A Mosquitto of this test's own, not yet started (some scenarios start it late)."""
    service = private_mosquitto(tmp_path / "mosquitto")
    yield service
    service.stop()


StackFactory = Callable[..., FaultStack]


@pytest.fixture
def make_stack(tmp_path: Path, key_prefix: str) -> Iterator[StackFactory]:
    """Builds a FaultStack whose agents' files exist; every process it started is stopped afterwards."""
    made: list[FaultStack] = []

    def build(redis_url: str, mqtt_url: str, agents: dict[str, str], visibility_timeout_s: int = 6,
              extra_env: dict[str, str] | None = None) -> FaultStack:
        config_dir = tmp_path / f"agents-{len(made)}"
        config_dir.mkdir()
        for agent_id, llm in agents.items():
            write_agent(config_dir, agent_id, mqtt_url, llm=llm)
        stack = FaultStack(config_dir, redis_url, key_prefix, tmp_path, visibility_timeout_s=visibility_timeout_s,
                           extra_env=extra_env or {})
        made.append(stack)
        return stack

    yield build
    for stack in made:
        stack.stop_all()


@pytest.fixture
def peers() -> Iterator[Callable[..., LoadPeer]]:
    opened: list[LoadPeer] = []

    def open_peer(mqtt_url: str, persistent: bool = False) -> LoadPeer:
        peer = LoadPeer(mqtt_url, persistent=persistent)
        opened.append(peer)
        return peer

    yield open_peer
    for peer in opened:
        peer.close()
