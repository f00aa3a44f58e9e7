"""Progress events end to end (PROTOCOL.md §10): a bridge and a worker on the real Redis and Mosquitto, the
fake Anthropic API asking for tools, and ``agent2389 inject`` reading the events as they come."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from fakes import anthropic_api
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Reply, Text, ToolUse, tool_calls, tool_results
from tests.conftest import REPO
from tests.e2e.stack import MqttPeer, Stack, write_agent, write_file_reader

fake_anthropic = anthropic_api.fake_anthropic
pytestmark = pytest.mark.slow  # a worker start-up imports the Anthropic SDK: about 5 s

ONE_TOOL_CALL = ["TaskStart", "LlmRequest", "LlmResponse", "ToolCall", "ToolComplete", "LlmRequest", "LlmResponse",
                 "TaskComplete"]


@pytest.fixture
def agents(unique_id: str) -> dict[str, str]:
    return {"reader": f"reader-{unique_id}", "echo": f"echo-{unique_id}"}


@pytest.fixture
def config_dir(tmp_path: Path, agents: dict[str, str], mqtt_url: str, fake_anthropic: FakeAnthropic) -> Path:
    directory = write_file_reader(tmp_path, agents["reader"], mqtt_url, fake_anthropic.url, API_KEY_ENV)
    write_agent(directory, agents["echo"], mqtt_url)
    return directory


def reads(path: str) -> Any:
    def respond(request: dict[str, Any]) -> Reply:
        results = tool_results(request)
        if not results:
            return tool_calls(ToolUse("file_read", {"path": path}))
        return Text(f"The file says: {results[0]['content']}")

    return respond


def progress_of(peer: MqttPeer, task_id: str, until: str = "TaskComplete") -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    while not events or events[-1][1]["event_type"] != until:
        [(topic, body, retained)] = peer.expect(1, timeout_s=30)
        assert not retained
        if "/progress" in topic and body["task_id"] == task_id:
            events.append((topic, body))
    return events


def test_a_task_with_a_tool_call_tells_each_step_in_order(
    running: Stack, peer: MqttPeer, agents: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    reader = agents["reader"]
    fake_anthropic.respond(reads("recipe.txt"))
    peer.subscribe(f"/control/agents/{reader}/progress/#")
    cid = f"conv-{uuid.uuid4().hex[:8]}"

    task = peer.send_task(reader, cid, "what is in recipe.txt?")

    events = progress_of(peer, task["task_id"])
    assert [body["event_type"] for _, body in events] == ONE_TOOL_CALL
    assert {topic.rsplit("/", 1)[-1] for topic, body in events if body["category"] == "Tool"} == {"tools"}
    assert {topic.rsplit("/", 1)[-1] for topic, body in events if body["category"] == "LLM"} == {"llm"}
    assert all(body["agent_id"] == reader and body["conversation_id"] == cid for _, body in events)
    assert "basil" not in json.dumps(events)  # the tool's result is never in an event
    assert events[4][1]["metadata"]["result_bytes"] == len("the secret ingredient is basil")


def test_a_failing_tool_is_a_tool_error_and_the_task_goes_on(
    running: Stack, peer: MqttPeer, agents: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    reader = agents["reader"]
    fake_anthropic.respond(reads("missing.txt"))
    peer.subscribe(f"/control/agents/{reader}/progress/#")

    task = peer.send_task(reader, f"conv-{uuid.uuid4().hex[:8]}", "what is in missing.txt?")

    kinds = [body["event_type"] for _, body in progress_of(peer, task["task_id"])]
    assert kinds == [kind if kind != "ToolComplete" else "ToolError" for kind in ONE_TOOL_CALL]


def test_inject_wait_prints_the_progress_on_stderr_and_the_answer_on_stdout(
    running: Stack, agents: dict[str, str], fake_anthropic: FakeAnthropic, mqtt_url: str
) -> None:
    fake_anthropic.respond(reads("recipe.txt"))

    result = subprocess.run([sys.executable, "-m", "agent2389.ops.cli", "inject", "--broker", mqtt_url, "--agent",
                             agents["reader"], "what is in recipe.txt?", "--wait", "30"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "The file says: the secret ingredient is basil\n"
    shown = [line.split()[:2] for line in result.stderr.splitlines() if line.startswith(agents["reader"])]
    assert shown == [[agents["reader"], kind] for kind in ONE_TOOL_CALL]


def test_a_v1_only_agent_answers_an_injected_v2_task_as_v1(
    running: Stack, agents: dict[str, str], mqtt_url: str
) -> None:
    result = subprocess.run([sys.executable, "-m", "agent2389.ops.cli", "inject", "--broker", mqtt_url, "--agent",
                             agents["echo"], "--v2", "--instruction", "repeat", "tides", "--wait", "30", "--json"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"task_id", "response"} and answer["response"] == "repeat: tides"
    assert "routing trace" not in result.stderr
