"""The agent2389 processes under test: agent files, one bridge, N workers, all on one key prefix.

Processes are started the way an operator starts them (``agent2389 bridge|worker --config DIR``), their
JSON logs go to files in the run directory, and a stack counts as up once every agent's retained
status says ``available``.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent2389.ops.processes import Child, agent2389_command, start_child
from bench.services import BenchError

REPO = Path(__file__).resolve().parent.parent


def write_agents(directory: Path, agent_ids: list[str], mqtt_url: str, llm: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    llm_lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in llm.items())
    for agent_id in agent_ids:
        (directory / f"{agent_id}.toml").write_text(
            f'[agent]\nid = "{agent_id}"\ndescription = "benchmark agent"\n'
            f'[mqtt]\nbroker_url = "{mqtt_url}"\n'
            f"[llm]\n{llm_lines}\n"
        )
    return directory


@dataclass
class Stack:
    run_dir: Path
    redis_url: str
    mqtt_port: int
    key_prefix: str = field(default_factory=lambda: f"agent2389-bench-{uuid.uuid4().hex[:8]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Child] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "AGENT2389_REDIS_URL": self.redis_url, "AGENT2389_KEY_PREFIX": self.key_prefix,
                "AGENT2389_LOG_FORMAT": "json", **self.extra_env}

    def start(self, name: str, command: list[str]) -> Child:
        """``command`` with the stack's environment, its output in the run directory."""
        started = start_child(name, command, self.env(), self.run_dir / f"{name}.log", cwd=REPO)
        self.processes.append(started)
        return started

    def agent2389(self, name: str, command: str, config_dir: Path, *args: str) -> Child:
        return self.start(name, agent2389_command(command, config_dir, *args))

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.processes}

    def check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                tail = process.log_path.read_text(errors="replace")[-2000:]
                raise BenchError(f"{process.name} exited with {process.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def wait_until_available(mqtt_port: int, agent_ids: list[str], stack: Stack, timeout_s: float = 60.0) -> None:
    """Block until every agent's retained status says ``available`` (workers verified, bridge subscribed)."""
    statuses: dict[str, str] = {}
    changed = threading.Condition()

    def received(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        with changed:
            statuses[str(body.get("agent_id"))] = str(body.get("status"))
            changed.notify_all()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{uuid.uuid4().hex[:8]}",
                         protocol=paho.MQTTv5)
    client.on_message = received
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    try:
        for agent_id in agent_ids:
            client.subscribe(f"/control/agents/{agent_id}/status", qos=1)
        waited = 0.0
        with changed:
            while not all(statuses.get(a) == "available" for a in agent_ids):
                stack.check_alive()
                if waited >= timeout_s:
                    raise BenchError(f"agents not available after {timeout_s:.0f} s: {statuses}")
                changed.wait(0.5)
                waited += 0.5
    finally:
        client.disconnect()
        client.loop_stop()
