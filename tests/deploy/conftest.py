"""Shared by the deploy tests: the repository's deploy files, and the command-line tools they need."""

from __future__ import annotations

import shutil
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent2389.config.agent import MqttSection
from agent2389.mqtt import connect_options, make_client
from tests.conftest import REPO
from tests.services import IN_CI, free_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker daemon and Compose; run by `make test-deploy`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Docker tests take minutes and root: only `pytest -m docker` (make test-deploy) runs them."""
    if "docker" in (config.getoption("markexpr") or ""):
        return
    deselected = [item for item in items if item.get_closest_marker("docker")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("docker")]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A failed test on a running compose stack (its ``stack`` argument) reports the stack's logs."""
    report = yield
    logs = getattr(getattr(item, "funcargs", {}).get("stack"), "logs", None)
    if report.when == "call" and report.failed and callable(logs):
        try:
            report.sections.append(("docker-compose logs", logs()))
        except Exception as error:  # the logs are a courtesy: never hide the test's own failure
            report.sections.append(("docker-compose logs", f"could not read them: {error!r}"))
    return report


def require_tool(name: str, why: str) -> str:
    """The tool's path; without it the test fails under CI=true (CI must install it) and skips elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def repo_path(relative: str) -> Path:
    return REPO / relative


def seconds(duration: str) -> float:
    """A Compose duration such as ``1m30s`` or ``60s`` in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, number = 0.0, ""
    rest = duration.strip()
    while rest:
        if rest[0].isdigit() or rest[0] == ".":
            number, rest = number + rest[0], rest[1:]
            continue
        unit = "ms" if rest.startswith("ms") else rest[0]
        if unit not in units or not number:
            raise ValueError(f"not a duration: {duration!r}")
        total, number, rest = total + float(number) * units[unit], "", rest[len(unit):]
    if number:
        raise ValueError(f"duration without a unit: {duration!r}")
    return total


def connects(mqtt: MqttSection, environ: dict[str, str] | None = None) -> bool:
    """Whether a client built the way agent2389 builds them gets a CONNACK from the broker."""
    client = make_client(mqtt, f"deploy-test-{free_port()}", environ=environ or {})
    connack: list[object] = []
    # Called for every CONNACK, a refusal too: waiting for it, not for the time-out, tells a refused login.
    client.on_connect = lambda client, userdata, flags, reason, properties: connack.append(reason)
    try:
        client.connect(**connect_options(mqtt, persistent=False))
        deadline = time.monotonic() + 5
        while not connack and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        return client.is_connected()
    except OSError:  # ssl.SSLCertVerificationError included
        return False
    finally:
        client.disconnect()
        if client.socket() is not None:
            client.socket().close()
