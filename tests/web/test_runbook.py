"""Every ``curl … | jq …`` line of the operators' runbook, run verbatim against a real ``agent2389 web``.

The only change to a line is the port: ``localhost:8080`` becomes the test server's free port.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent2389.logs import JsonFormatter
from tests.conftest import REPO
from tests.e2e.stack import MqttPeer, Stack, write_agent
from tests.services import IN_CI, free_port
from tests.web.conftest import AGENTS, System
from workers.llm.admission import Gate

RUNBOOKS = (REPO.parent / "shared" / "seeds" / "RUNBOOK.md", REPO / "docs" / "runbook.md")
TARGET = "localhost:8080"


def runbook() -> Path:
    for path in RUNBOOKS:
        if path.exists():
            return path
    pytest.fail(f"no runbook found at {', '.join(map(str, RUNBOOKS))}")


def shell_commands(markdown: str) -> list[str]:
    """The commands of every fenced bash block, with continuation lines and multi-line quotes joined."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            if not pending and line.lstrip().startswith("#"):
                continue
            pending = f"{pending}\n{line}" if pending else line
            if pending.endswith("\\"):
                pending = pending[:-1]
                continue
            if pending.count("'") % 2:
                continue
            commands.append(pending.strip())
            pending = ""
    return commands


def local_curl_lines(markdown: str) -> list[str]:
    """``curl`` lines against the local web app (aliases unwrapped; ``kubectl exec`` lines are not local)."""
    found = []
    for command in shell_commands(markdown):
        if command.startswith("alias ") and TARGET in command:
            body = shlex.split(command.partition("=")[2])[0]
            command = shlex.split(body)[-1] if body.startswith("watch ") else body
        if command.startswith("curl ") and TARGET in command:
            found.append(command)
    return found


def test_the_runbook_has_the_lines_this_test_is_about() -> None:
    lines = local_curl_lines(runbook().read_text())
    jq_lines = [line for line in lines if "| jq" in line]
    assert len(jq_lines) >= 15
    assert any(".tasks.tasks_failed / .tasks.tasks_received" in line for line in jq_lines)
    assert any(line.startswith("curl -f http://localhost:8080/health &&") for line in lines)


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def run_line(line: str, port: int) -> tuple[str, list[Any]]:
    command = line.replace(TARGET, f"localhost:{port}")
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True,
                            timeout=20, check=False)
    assert result.returncode == 0, f"{line!r} failed: {result.stderr}"
    if "| jq" not in line:
        return result.stdout, []
    decoder, text, values, pos = json.JSONDecoder(), result.stdout.strip(), [], 0
    while pos < len(text):
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)
        pos = len(text) - len(text[pos:].lstrip())
    return result.stdout, values


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        if IN_CI:
            pytest.fail(f"{tool} is not installed and CI=true: apt-get install {tool} (see .ci/run)")
        pytest.skip(f"{tool} is not installed")


def start_web(stack: Stack) -> int:
    port = free_port()
    stack.start("web", "--port", str(port))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/live", timeout=1) as response:
                if response.status == 200:
                    return port
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"agent2389 web did not answer on port {port}: {stack.processes[-1].log_path.read_text()[-2000:]}")


@pytest.fixture
def config_dir(tmp_path: Path, mqtt_url: str) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    for agent_id in AGENTS:
        write_agent(directory, agent_id, mqtt_url)
    return directory


def test_every_runbook_line_gives_a_true_answer_from_a_real_web_process(
    config_dir: Path, redis_url: str, key_prefix: str, system: System, tmp_path: Path
) -> None:
    require("jq")
    require("curl")
    system.healthy()
    for i, seconds in enumerate((0.2, 0.4, 0.6)):
        system.task("echo", f"ok-{i}", seconds, model="claude-test", tools=(("http_request", "ok"),))
    system.task("writer", "slow-tool", 24.0, error_code="tool_execution_failed",
                tools=(("web_search", "timeout"), ("web_search", "timeout")))
    system.stats.task_started("writer", "running", "conv", 1)
    system.stats.mqtt_published(4)
    system.stats.mqtt_published(failed=True)
    expected = {
        "jq '.tasks.tasks_completed'": [3],
        "jq '\n  (.tasks.tasks_failed / .tasks.tasks_received) * 100": [25.0],
        "error_rate: ((.tasks.tasks_failed": [{"received": 4, "failed": 1, "error_rate": 25.0}],
        "{tasks_received: .tasks.tasks_received, tasks_completed": [{"tasks_received": 4, "tasks_completed": 3}],
        "jq '.tasks.avg_processing_time_ms'": [6300.0],
        "jq '.mqtt.connected'": [True],
        "jq '.mqtt.publish_failures'": [1],
        "jq '.tasks.current_pipeline_depth'": [1],
        "jq '.tasks.tasks_processing'": [1],
        "jq '.checks.mqtt.status'": ["healthy"],
        "jq .status": ["healthy"],
        "select(.value.timeouts > 0)": [{"key": "web_search"}],
        "select(.value.avg_execution_time_ms > 5000)": [{"key": "web_search"}],
    }

    stack = Stack(config_dir, redis_url, key_prefix, tmp_path)
    try:
        port = start_web(stack)
        lines = local_curl_lines(runbook().read_text())
        for line in lines:
            system.healthy()  # a live bridge and worker keep beating; all the lines may outlast one beat
            out, values = run_line(line, port)
            if "| jq" not in line:
                assert "HEALTHY" in out and "UNHEALTHY" not in out, line
                continue
            assert values, f"{line!r} printed nothing"
            for leaf in leaves(values):
                assert leaf is not None, f"{line!r} gave null: {values}"
            for marker, wanted in expected.items():
                if marker in line:
                    got = [{"key": v["key"]} if isinstance(v, dict) and "key" in v else v for v in values]
                    assert got == wanted, f"{line!r} gave {values}, expected {wanted}"
        assert stack.processes[-1].stop() == 0, "agent2389 web did not exit cleanly on SIGTERM"
    finally:
        stack.stop_all()


def log_query(markdown: str, marker: str) -> list[str]:
    """jq's arguments (options, then the filter) in the runbook's ``kubectl logs … | jq …`` line that
    contains ``marker``."""
    for command in shell_commands(markdown):
        if command.startswith("kubectl logs") and marker in command:
            return shlex.split(re.split(r"\|\s*jq\s+", command, maxsplit=1)[1])
    pytest.fail(f"no log query with {marker!r} in the runbook")


def run_log_query(markdown: str, marker: str, logs: str) -> list[Any]:
    result = subprocess.run(["jq", "-c", *log_query(markdown, marker)], input=logs, capture_output=True,
                            text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


LOG_QUERIES: dict[str, Callable[[Any], bool]] = {
    'select(.span.name=="task_processing")': lambda line: line["span"]["name"] == "task_processing",
    'select(.target | contains("mqtt"))': lambda line: "mqtt" in line["target"],
}


def assert_log_queries_find(stack: Stack, markdown: str) -> None:
    """The runbook's log queries, run on the processes' real JSON logs, find what they look for."""
    logs = "".join(p.log_path.read_text() for p in stack.processes)
    for marker, wanted in LOG_QUERIES.items():
        found = run_log_query(markdown, marker, logs)
        assert found, f"the runbook's log query {marker} finds nothing"
        # Each a log line that matches: jq's options taken for its filter once printed every line as a string.
        assert all(isinstance(line, dict) and wanted(line) for line in found), found[:3]
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    spans = [line for line in lines if line.get("span", {}).get("name") == "task_processing"]
    assert all({"task_id", "agent_id", "conversation_id"} <= set(line["span"]) for line in spans)
    assert any("duration_ms" in line["fields"] for line in spans)


@pytest.mark.slow
def test_with_bridge_and_worker_running_and_tasks_flowing_every_runbook_line_answers(
    redis_url: str, key_prefix: str, mqtt_url: str, tmp_path: Path
) -> None:
    require("jq")
    require("curl")
    # Agent ids and the conversation are this run's own: other test runs share the broker.
    suffix = key_prefix.rsplit("-", 1)[-1][:8]
    agents = tuple(f"{agent_id}-{suffix}" for agent_id in AGENTS)
    live_dir = tmp_path / "live-agents"
    live_dir.mkdir()
    for agent_id in agents:
        write_agent(live_dir, agent_id, mqtt_url)
    conversation = f"runbook-{suffix}"
    stack = Stack(live_dir, redis_url, key_prefix, tmp_path)
    peer = MqttPeer(mqtt_url)
    try:
        for agent_id in agents:
            peer.subscribe(f"/control/agents/{agent_id}/status")
        stack.worker()
        stack.bridge()
        for agent_id in agents:
            peer.wait_for_status(agent_id, "available")
        peer.subscribe(f"/conversations/{conversation}/#")
        for i in range(4):
            peer.send_task(agents[i % 2], conversation, text=f"task {i}")
        peer.expect(4, timeout_s=30)
        port = start_web(stack)
        _, [health] = run_line(f"curl -s http://{TARGET}/health | jq", port)
        assert health["status"] == "healthy", health
        for line in local_curl_lines(runbook().read_text()):
            out, values = run_line(line, port)
            if "| jq" not in line:
                assert "HEALTHY" in out and "UNHEALTHY" not in out, line
            elif "to_entries[]" not in line:  # these agents have no tools: a walk over tools prints nothing
                assert values and all(leaf is not None for leaf in leaves(values)), f"{line!r}: {values}"
        _, [completed] = run_line(f"curl -s http://{TARGET}/metrics | jq '.tasks.tasks_completed'", port)
        assert completed == 4
        assert_log_queries_find(stack, runbook().read_text())
    finally:
        peer.close()
        stack.stop_all()


def test_our_runbooks_query_for_workers_past_their_cpu_finds_the_llm_gates_warning() -> None:
    require("jq")
    gate_logs = GateLogs()
    logging.getLogger("agent2389.llm").addHandler(gate_logs)
    try:
        async def fall_behind() -> None:
            gate = Gate("llm-anthropic", probe_s=3600)
            for _ in range(40):
                await gate.enter()
            gate.observe(2.0)

        asyncio.run(fall_behind())
    finally:
        logging.getLogger("agent2389.llm").removeHandler(gate_logs)
    other = [{"level": "WARNING", "target": "agent2389.llm", "fields": {"message": "model x is not in the list"}},
             {"level": "INFO", "target": "agent2389.worker", "fields": {"message": "task completed"}}]
    logs = "".join(f"{line}\n" for line in [*map(json.dumps, other), *gate_logs.lines, "celery: not json"])

    found = run_log_query((REPO / "docs" / "runbook.md").read_text(), "behind: at most", logs)

    assert [line["fields"]["message"] for line in found] == [
        json.loads(gate_logs.lines[0])["fields"]["message"]]
    assert found[0]["fields"]["message"].startswith("llm-anthropic is 2.0 s behind: at most 30 LLM calls")


class GateLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
