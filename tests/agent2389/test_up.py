"""``agent2389 up`` then ``agent2389 inject --wait``: the quick start, as a user types it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent2389.embedded import answers
from tests.conftest import REPO
from tests.e2e.stack import write_agent
from tests.services import IN_CI, free_port

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent2389.cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=timeout)


class Up:
    def __init__(self, config: Path, env: dict[str, str], tmp: Path, *args: str) -> None:
        self.log = (tmp / "up.log").open("w")
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent2389.cli", "up", "--config", str(config), "--port", str(free_port()),
             *args], env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def inject(self, *args: str, wait: float = 30) -> subprocess.CompletedProcess[str]:
        deadline = time.monotonic() + wait
        while True:
            result = cli("inject", *args, "--wait", "5", env=self.env)
            if result.returncode == 0 or time.monotonic() > deadline:
                return result

    def stop(self) -> int:
        """Ctrl-C as a terminal sends it: to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(60)
        finally:
            self.log.close()


@pytest.fixture
def env(redis_url: str, key_prefix: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "AGENT2389_KEY_PREFIX": key_prefix, "LOG_FORMAT": "json"}


@pytest.fixture
def up_factory(tmp_path: Path) -> Iterator[list[Up]]:
    started: list[Up] = []
    yield started
    for up in started:
        if up.process.poll() is None:
            up.stop()


def test_up_then_inject_prints_the_answer(tmp_path: Path, mqtt_url: str, unique_id: str, env: dict[str, str],
                                          up_factory: list[Up]) -> None:
    config = tmp_path / "agents"
    config.mkdir()
    write_agent(config, f"echo-{unique_id}", mqtt_url)
    up = Up(config, env, tmp_path, "--no-embedded")
    up_factory.append(up)
    result = up.inject("--config", str(config), "--agent", f"echo-{unique_id}", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello"
    assert up.stop() == 0


def test_up_with_four_workers_answers_a_three_agent_pipeline(tmp_path: Path, mqtt_url: str, unique_id: str,
                                                             env: dict[str, str], up_factory: list[Up]) -> None:
    config = tmp_path / "agents"
    config.mkdir()
    for role in ("r", "w", "e"):
        write_agent(config, f"{role}-{unique_id}", mqtt_url)
    up = Up(config, env, tmp_path, "--no-embedded", "--workers", "4", "--concurrency", "10")
    up_factory.append(up)
    result = up.inject("--config", str(config), "--agent", f"r-{unique_id}", "--next",
                       f"w-{unique_id},e-{unique_id}", "--instruction", "research", "draft")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "research: draft"
    assert up.stop() == 0


@pytest.mark.skipif(not IN_CI and (shutil.which("mosquitto") is None or shutil.which("redis-server") is None),
                    reason="needs redis-server and mosquitto binaries to embed")
def test_up_starts_embedded_redis_and_mosquitto_when_none_answers(tmp_path: Path, unique_id: str,
                                                                  up_factory: list[Up]) -> None:
    redis_port, mqtt_port = free_port(), free_port()
    config = tmp_path / "agents"
    config.mkdir()
    write_agent(config, f"echo-{unique_id}", f"mqtt://127.0.0.1:{mqtt_port}")
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "LOG_FORMAT": "json"}
    up = Up(config, env, tmp_path)
    up_factory.append(up)
    result = up.inject("--config", str(config), "--agent", f"echo-{unique_id}", "embedded")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "embedded"
    assert "EMBEDDED redis" in (tmp_path / "up.log").read_text()
    assert up.stop() == 0
    assert not answers("127.0.0.1", redis_port) and not answers("127.0.0.1", mqtt_port)


def test_without_mosquitto_up_embeds_amqtt_and_everything_speaks_mqtt_3_1_1(
    tmp_path: Path, unique_id: str, redis_url: str, key_prefix: str, up_factory: list[Up]
) -> None:
    mqtt_port = free_port()
    config = tmp_path / "agents"
    config.mkdir()
    write_agent(config, f"echo-{unique_id}", f"mqtt://127.0.0.1:{mqtt_port}")
    visible = [str(Path(sys.executable).parent), *(d for d in os.environ["PATH"].split(os.pathsep)
                                                  if d and not (Path(d) / "mosquitto").exists())]
    env = {**os.environ, "PATH": os.pathsep.join(visible), "REDIS_URL": redis_url,
           "AGENT2389_KEY_PREFIX": key_prefix, "LOG_FORMAT": "json"}
    up = Up(config, env, tmp_path)
    up_factory.append(up)
    result = up.inject("--config", str(config), "--agent", f"echo-{unique_id}", "old protocol")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "old protocol"
    assert "EMBEDDED amqtt (MQTT 3.1.1)" in (tmp_path / "up.log").read_text()
    assert up.stop() == 0
