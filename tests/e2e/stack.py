"""Real agent2389 processes for end-to-end tests, and an MQTT client that plays the other agents."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent2389.ops.processes import Child, agent2389_command, start_child, terminate, wait_or_kill
from tests.conftest import REPO


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """The condition's first truthy value, polled until ``timeout_s`` (then the test fails, naming ``what``)."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)
    return value


def write_agent(directory: Path, agent_id: str, mqtt_url: str, extra: str = "", llm: str = "") -> Path:
    path = directory / f"{agent_id}.toml"
    path.write_text(
        f'[agent]\nid = "{agent_id}"\ndescription = "test agent {agent_id}"\n{extra}\n'
        f'[mqtt]\nbroker_url = "{mqtt_url}"\n'
        f'[llm]\nprovider = "echo"\nmodel = "echo"\n{llm}\n'
    )
    return path


def write_file_reader(tmp_path: Path, agent_id: str, mqtt_url: str, llm_url: str, api_key_env: str) -> Path:
    """An agents directory with one agent on an Anthropic-style API at ``llm_url`` whose only tool reads
    files from a data directory holding ``recipe.txt``; returns the agents directory."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "recipe.txt").write_text("the secret ingredient is basil")
    directory = tmp_path / "agents"
    directory.mkdir()
    (directory / f"{agent_id}.toml").write_text(
        f'[agent]\nid = "{agent_id}"\n'
        f'[mqtt]\nbroker_url = "{mqtt_url}"\n'
        f'[llm]\nprovider = "anthropic"\nmodel = "claude-haiku-5-5"\nbase_url = "{llm_url}"\n'
        f'api_key_env = "{api_key_env}"\nmax_retries = 0\ntimeout_s = 10\n'
        f'[tools]\nfile_read = {{ impl = "builtin", config = {{ root = "{data}" }}, timeout_s = 5 }}\n'
    )
    return directory


def start_announced(stack: Stack, peer: MqttPeer, agent_ids: Iterable[str]) -> None:
    """A worker and a bridge, until the peer sees every agent announced ``available`` (the bridge lists its
    agents in the registry before announcing them, so from then on they can also be routed to)."""
    ids = list(agent_ids)
    for agent_id in ids:
        peer.subscribe(f"/control/agents/{agent_id}/status")
    stack.worker()
    stack.bridge()
    for agent_id in ids:
        peer.wait_for_status(agent_id, "available")


@dataclass
class Process(Child):
    """A started agent2389 process (agent2389.ops.processes.Child) whose JSON log lines a test can read."""

    # A log file the starter opened for it (tests/e2e/celery_tools.py), closed when it stops.
    log_file: Any = None

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def stop(self, timeout_s: float = 15) -> int:
        terminate(self.popen)
        return self.stopped(timeout_s)

    def stopped(self, timeout_s: float = 15) -> int:
        """Its exit code once it exited (killed after ``timeout_s``), for a process already asked to stop."""
        try:
            return wait_or_kill(self.popen, timeout_s)
        finally:
            if self.log_file is not None:
                self.log_file.close()

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def logged(self, message: str) -> bool:
        """Whether one of its log lines' messages contains ``message``."""
        return any(message in str(line.get("fields", {}).get("message", "")) for line in self.log_lines())


@dataclass
class Stack:
    """Bridge and worker processes for the agents in ``config_dir``, isolated by a Redis key prefix."""

    config_dir: Path
    redis_url: str
    key_prefix: str
    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "AGENT2389_REDIS_URL": self.redis_url, "AGENT2389_KEY_PREFIX": self.key_prefix,
                "AGENT2389_LOG_FORMAT": "json", "AGENT2389_LOG_LEVEL": "INFO", "AGENT2389_VISIBILITY_TIMEOUT": "6"}

    def start(self, command: str, *args: str) -> Process:
        name = f"{command}-{len(self.processes)}"
        child = start_child(name, agent2389_command(command, self.config_dir, *args), self.env(),
                            self.log_dir / f"{name}.log", cwd=REPO)
        process = Process(child.name, child.popen, child.log_path)
        self.processes.append(process)
        return process

    def bridge(self) -> Process:
        return self.start("bridge")

    def worker(self, *args: str) -> Process:
        return self.start("worker", "--concurrency", "20", *args)

    def stop_all(self) -> None:
        # Every process asked at once, then waited for: a test's teardown lasts as long as its slowest
        # process's shutdown, not their sum.
        for process in reversed(self.processes):
            terminate(process.popen)
        for process in reversed(self.processes):
            process.stopped()


class MqttPeer:
    """A plain MQTT 5 client: publishes tasks the way any other agent would, and records what comes back."""

    def __init__(self, mqtt_url: str) -> None:
        parts = urlsplit(mqtt_url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"peer-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv5)
        self.messages: queue.Queue[tuple[str, dict[str, Any] | str, bool]] = queue.Queue()
        self._subscribed = threading.Event()
        self.statuses: dict[str, dict[str, Any]] = {}
        self._status_changed = threading.Condition()
        self.client.on_message = self._received
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(5), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: dict[str, Any] | str | bytes, retain: bool = False) -> None:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        self.client.publish(topic, body, qos=1, retain=retain).wait_for_publish(5)

    def send_task(self, agent_id: str, conversation_id: str, text: str = "hello",
                  next_agents: list[str] | None = None, task_id: str | None = None, **fields: Any) -> dict[str, Any]:
        nxt: dict[str, Any] | None = None
        for later in reversed(next_agents or []):
            nxt = {"topic": f"/control/agents/{later}/input", "instruction": f"then {later}", "input": None,
                   "next": nxt}
        envelope = {"task_id": task_id or str(uuid.uuid4()), "conversation_id": conversation_id,
                    "topic": f"/control/agents/{agent_id}/input", "instruction": "say", "input": {"text": text},
                    "next": nxt, **fields}
        self.publish(f"/control/agents/{agent_id}/input", envelope)
        return envelope

    def expect(self, count: int = 1, timeout_s: float = 15) -> list[tuple[str, Any, bool]]:
        """Exactly the next ``count`` messages (fails the test on time-out)."""
        got = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"expected {count} message(s), got {len(got)}: {got}"
            try:
                got.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return got

    def quiet_for(self, seconds: float) -> list[tuple[str, Any, bool]]:
        """Whatever arrives within ``seconds`` (to prove that nothing more does)."""
        time.sleep(seconds)
        extra = []
        while not self.messages.empty():
            extra.append(self.messages.get_nowait())
        return extra

    def wait_for_status(self, agent_id: str, status: str, timeout_s: float = 20) -> dict[str, Any]:
        """The agent's latest status message, once it says ``status``."""
        with self._status_changed:
            ok = self._status_changed.wait_for(
                lambda: self.statuses.get(agent_id, {}).get("status") == status, timeout=timeout_s)
            assert ok, f"{agent_id} did not become {status} within {timeout_s} s (last: {self.statuses.get(agent_id)})"
            return self.statuses[agent_id]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _received(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            body: dict[str, Any] | str = json.loads(message.payload)
        except ValueError:
            body = message.payload.decode(errors="replace")
        if message.topic.endswith("/status") and isinstance(body, dict):
            with self._status_changed:
                self.statuses[str(body.get("agent_id"))] = {**body, "retained": bool(message.retain)}
                self._status_changed.notify_all()
            return
        self.messages.put((message.topic, body, bool(message.retain)))
