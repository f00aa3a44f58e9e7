"""Every `curl … | jq` (and `curl … | grep`) line of docs/runbook.md, run against a live bridge, worker and web app."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import repo_path, require_tool
from tests.e2e.stack import MqttPeer, Stack, write_agent
from tests.services import free_port

RUNBOOK = repo_path("docs/runbook.md")
EXAMPLE_TASK_ID = "550e8400-e29b-41d4-a716-446655440000"


def shell_commands(markdown: str) -> list[str]:
    """The commands of the ```bash blocks: continuation lines joined, comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line.rstrip().removesuffix("\\") + (" " if line.rstrip().endswith("\\") else "")
            if line.rstrip().endswith("\\") or not complete(pending):
                continue
            commands.append(pending.strip())
            pending = ""
    return commands


def complete(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def runbook_queries() -> list[str]:
    return [c for c in shell_commands(RUNBOOK.read_text(encoding="utf-8"))
            if c.startswith("curl ") and re.search(r"\| (jq|grep) ", c + " ")]


def test_the_runbook_has_the_queries_operators_rely_on() -> None:
    queries = runbook_queries()
    assert len(queries) >= 30
    for fragment in (".checks.mqtt.status", ".tasks.tasks_completed", ".tasks.avg_processing_time_ms",
                     ".mqtt.connected", ".tools.tool_stats", "processing_time_p95_ms", "/api/workers"):
        assert any(fragment in query for query in queries), fragment


def test_the_runbook_uses_no_command_this_system_does_not_have() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    for stale in ("cargo run", "docker-compose ", "deployment/agent ", "deploy/agent ", "-- curl", "nc -zv",
                  "docker exec mqtt-broker"):
        assert stale not in text, stale


@pytest.fixture
def live_stack(tmp_path: Path, unique_id: str, mqtt_url: str, redis_url: str, key_prefix: str) -> Iterator[str]:
    """A bridge, a worker and the web app serving one echo agent that has answered a few tasks."""
    config = tmp_path / "agents"
    config.mkdir()
    agent_id = f"runbook-{unique_id}"
    write_agent(config, agent_id, mqtt_url)
    stack = Stack(config, redis_url, key_prefix, tmp_path)
    peer = MqttPeer(mqtt_url)
    port = free_port()
    try:
        peer.subscribe(f"/control/agents/{agent_id}/status")
        stack.worker()
        stack.bridge()
        stack.start("web", "--port", str(port), "--host", "127.0.0.1")
        peer.wait_for_status(agent_id, "available")
        conversation = f"runbook-{uuid.uuid4().hex[:8]}"
        peer.subscribe(f"/conversations/{conversation}/#")
        for number in range(3):
            peer.send_task(agent_id, conversation, f"task {number}")
        peer.expect(3)
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base)
        wait_until_tasks_listed(base)
        yield base
    finally:
        peer.close()
        stack.stop_all()


def wait_until_healthy(base: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                if json.load(response)["status"] == "healthy":
                    return
        except OSError as exc:  # HTTPError (503) included
            last = str(exc)
        time.sleep(0.5)
    raise AssertionError(f"the stack did not become healthy: {last}")


def wait_until_tasks_listed(base: str, timeout_s: float = 10) -> None:
    """Stats reach Redis a moment after the answers (they are written in the background, in batches)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(f"{base}/api/tasks?limit=1", timeout=5) as response:
            if json.load(response)["tasks"]:
                return
        assert time.monotonic() < deadline, "the answered tasks never showed in /api/tasks"
        time.sleep(0.1)


def a_recent_task_id(base: str) -> str:
    with urllib.request.urlopen(f"{base}/api/tasks?limit=1", timeout=5) as response:
        return str(json.load(response)["tasks"][0]["task_id"])


@pytest.mark.slow
def test_every_runbook_query_answers_against_a_live_stack(live_stack: str) -> None:
    require_tool("jq", "the runbook's queries pipe curl into jq")
    require_tool("curl", "the runbook's queries use curl")
    task_id = a_recent_task_id(live_stack)
    failures = []
    for query in runbook_queries():
        command = query.replace("http://localhost:8080", live_stack).replace(EXAMPLE_TASK_ID, task_id)
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=30)
        lines = result.stdout.strip().splitlines()
        # A filter (select, iteration) may rightly find nothing; every other query must give a value.
        may_be_empty = "select(" in query or "[]" in query
        if result.returncode != 0 or "null" in lines or (not lines and not may_be_empty):
            failures.append(f"{query}\n  exit {result.returncode}, out {result.stdout[:300]!r}, "
                            f"err {result.stderr[:300]!r}")
    assert failures == [], "\n".join(failures)
