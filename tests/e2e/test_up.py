"""``agent2389 up`` then ``agent2389 inject --wait``: the quick start, as a user types it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agent2389.ops.local_services import answers
from agent2389.state.keys import Keys
from agent2389.state.presence import Presence, WorkerInfo
from tests.conftest import REPO
from tests.e2e.stack import MqttPeer, wait_until, write_agent
from tests.services import IN_CI, free_port

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent2389.ops.cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=timeout)


class Up:
    def __init__(self, config: Path, env: dict[str, str], tmp: Path, *args: str) -> None:
        self.log_path = tmp / "up.log"
        self.log = self.log_path.open("w")
        self.env = env
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent2389.ops.cli", "up", "--config", str(config), "--port", str(self.port),
             *args], env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def inject(self, *args: str, wait: float = 30) -> subprocess.CompletedProcess[str]:
        deadline = time.monotonic() + wait
        while True:
            result = cli("inject", *args, "--wait", "5", env=self.env)
            if result.returncode == 0 or time.monotonic() > deadline:
                return result

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            assert self.process.poll() is None, f"up exited ({self.process.returncode}):\n{self.output()}"
            assert time.monotonic() < deadline, f"{text!r} not in up's output:\n{self.output()}"
            time.sleep(0.1)

    def stop(self) -> int:
        """Ctrl-C as a terminal sends it: to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(60)
        finally:
            self.log.close()


@pytest.fixture
def env(redis_url: str, key_prefix: str) -> dict[str, str]:
    return {**os.environ, "AGENT2389_REDIS_URL": redis_url, "AGENT2389_KEY_PREFIX": key_prefix,
            "AGENT2389_LOG_FORMAT": "json"}


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
    env = {**os.environ, "AGENT2389_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "AGENT2389_LOG_FORMAT": "json"}
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
    env = {**os.environ, "PATH": os.pathsep.join(visible), "AGENT2389_REDIS_URL": redis_url,
           "AGENT2389_KEY_PREFIX": key_prefix, "AGENT2389_LOG_FORMAT": "json"}
    up = Up(config, env, tmp_path)
    up_factory.append(up)
    result = up.inject("--config", str(config), "--agent", f"echo-{unique_id}", "old protocol")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "old protocol"
    assert "EMBEDDED amqtt (MQTT 3.1.1)" in (tmp_path / "up.log").read_text()
    # The bridge says at start-up what MQTT 3.1.1 cannot do for retained tasks.
    assert "MQTT 3.1.1 cannot keep the retain flag" in (tmp_path / "up.log").read_text()
    assert up.stop() == 0


def live_workers(redis_url: str, key_prefix: str) -> list[WorkerInfo]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return Presence(client, Keys(key_prefix)).workers()
    finally:
        client.close()


def test_up_restarts_a_worker_killed_mid_task_and_every_task_is_answered_once(
    tmp_path: Path, mqtt_url: str, redis_url: str, key_prefix: str, unique_id: str, env: dict[str, str],
    up_factory: list[Up]
) -> None:
    config = tmp_path / "agents"
    config.mkdir()
    slow = f"slow-{unique_id}"
    write_agent(config, slow, mqtt_url, llm="delay_s = 4")
    peer = MqttPeer(mqtt_url)
    try:
        cid = f"conv-{unique_id}"
        peer.subscribe(f"/conversations/{cid}/#")
        up = Up(config, {**env, "AGENT2389_VISIBILITY_TIMEOUT": "6"}, tmp_path, "--no-embedded", "--workers", "2",
                "--concurrency", "10")
        up_factory.append(up)
        up.wait_for_output("agent2389 is up")
        sent = {peer.send_task(slow, cid, f"t{i}")["task_id"] for i in range(6)}
        wait_until(lambda: any(w.active for w in live_workers(redis_url, key_prefix)), 20, "a worker holds tasks")
        doomed = next(w for w in live_workers(redis_url, key_prefix) if w.active)
        os.kill(doomed.pid, signal.SIGKILL)
        answers = peer.expect(6, timeout_s=50)
        assert sorted(body["task_id"] for _, body, _ in answers) == sorted(sent)
        assert all("response" in body for _, body, _ in answers)
        assert peer.quiet_for(3) == []
    finally:
        peer.close()
    up.wait_for_output("restarted (restart 1)")
    assert "exited with code -9 (killed by SIGKILL); restarting it" in up.output()
    wait_until(lambda: len({w.pid for w in live_workers(redis_url, key_prefix)} - {doomed.pid}) == 2, 30,
               "two live workers again")
    assert up.process.poll() is None
    with urllib.request.urlopen(f"http://127.0.0.1:{up.port}/metrics", timeout=5) as response:
        assert json.load(response)["restarts"]["total"] == 1
    assert up.stop() == 0


def test_up_on_a_port_in_use_says_so_in_one_line_and_exits_2(tmp_path: Path, mqtt_url: str, unique_id: str,
                                                              env: dict[str, str]) -> None:
    config = tmp_path / "agents"
    config.mkdir()
    write_agent(config, f"echo-{unique_id}", mqtt_url)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        result = cli("up", "--config", str(config), "--port", str(port), "--no-embedded", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"agent2389 up: port {port} is already in use by another program; choose another with --port or "
        "AGENT2389_WEB_PORT")
    assert "is up" not in result.stdout + result.stderr


def test_up_with_an_unreachable_redis_names_it_never_claims_to_be_up_and_stops_cleanly(
    tmp_path: Path, mqtt_url: str, unique_id: str, up_factory: list[Up]
) -> None:
    config = tmp_path / "agents"
    config.mkdir()
    write_agent(config, f"echo-{unique_id}", mqtt_url)
    redis_port = free_port()
    env = {**os.environ, "AGENT2389_REDIS_URL": f"redis://:s3cretpass@127.0.0.1:{redis_port}/0",
           "AGENT2389_LOG_FORMAT": "json"}
    up = Up(config, env, tmp_path, "--no-embedded")
    up_factory.append(up)
    up.wait_for_output(f"still waiting: Redis at redis://127.0.0.1:{redis_port}/0 does not answer")
    # The workers are in Celery's connection retries now: a stop must be clean there too.
    up.wait_for_output("Cannot connect to")
    assert up.stop() == 0
    output = up.output()
    assert "is up" not in output
    assert "s3cretpass" not in output
    assert "Traceback" not in output
