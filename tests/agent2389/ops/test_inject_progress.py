"""``inject --v2`` and what ``inject --wait`` and ``monitor`` show of a task's progress, against the real broker
(a plain MQTT peer plays the agents)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent2389.ops.test_mqtt_tools import Announce, cli
from tests.conftest import REPO
from tests.e2e.stack import MqttPeer


def event(agent: str, task: dict[str, Any], kind: str, message: str) -> dict[str, Any]:
    return {"agent_id": agent, "task_id": task["task_id"], "conversation_id": task["conversation_id"],
            "timestamp": "2026-11-30T12:00:00.000000Z", "category": "General", "event_type": kind,
            "message": message, "metadata": {}}


@pytest.fixture
def inject_waiting(mqtt_url: str) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(agent: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-m", "agent2389.ops.cli", "inject", "--broker", mqtt_url,
                                    "--agent", agent, *args, "--wait", "20"], cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_inject_v2_sends_a_workflows_first_envelope(mqtt_url: str, unique_id: str, peer: MqttPeer,
                                                   announce: Announce) -> None:
    agent = f"v2-{unique_id}"
    announce(agent, "available")
    peer.subscribe(f"/control/agents/{agent}/input")

    result = cli("inject", "--broker", mqtt_url, "--agent", agent, "--v2", "--instruction", "research", "tides")

    assert result.returncode == 0, result.stderr
    [(_, body, _)] = peer.expect(1)
    assert body["version"] == "2.0" and body["next"] is None
    assert body["instruction"] == "research" and body["input"] == "tides"
    assert "context" not in body and "routing_trace" not in body


def test_inject_v2_with_a_static_pipeline_is_refused(mqtt_url: str) -> None:
    result = cli("inject", "--broker", mqtt_url, "--agent", "a", "--v2", "--next", "b", "x")
    assert result.returncode == 2 and "--v2 lets the agents route the work" in result.stderr


def test_inject_wait_prints_its_tasks_progress_on_stderr_and_the_answer_from_any_agent_on_stdout(
    unique_id: str, peer: MqttPeer, announce: Announce, inject_waiting: Any
) -> None:
    first, second = f"first-{unique_id}", f"second-{unique_id}"
    announce(first, "available")
    peer.subscribe(f"/control/agents/{first}/input")
    process = inject_waiting(first, "--v2", "question")
    [(_, task, _)] = peer.expect(1)
    other = {**task, "task_id": "another-task"}
    peer.publish(f"/control/agents/{first}/progress", event(first, task, "TaskStart", "task started"))
    peer.publish(f"/control/agents/{first}/progress/llm", event(first, other, "LlmRequest", "not ours"))
    peer.publish(f"/control/agents/{first}/progress", event(first, task, "Routed", "routed to second: prose"))
    peer.publish(f"/control/agents/{second}/progress", event(second, task, "TaskComplete", "task completed"))
    trace = [{"from_agent": first, "to_agent": second, "reason": "prose", "timestamp": "2026-11-30T12:00:00Z",
              "step_number": 1}]
    peer.publish(f"/conversations/{task['conversation_id']}/{second}",
                 {"task_id": task["task_id"], "response": "the answer", "routing_trace": trace})

    out, err = process.communicate(timeout=20)

    assert process.returncode == 0, err
    assert out == "the answer\n"
    lines = [line.split() for line in err.splitlines() if not line.startswith("sent task")]
    assert [(words[0], words[1]) for words in lines[:3]] == [(first, "TaskStart"), (first, "Routed"),
                                                             (second, "TaskComplete")]
    assert "not ours" not in err
    assert err.splitlines()[-2:] == ["routing trace:", f"  1. {first} -> {second}: prose"]


def test_monitor_shows_progress_events_as_readable_lines(mqtt_url: str, unique_id: str, peer: MqttPeer) -> None:
    agent = f"mon-{unique_id}"
    task = {"task_id": "t-1", "conversation_id": "c-1"}
    process = subprocess.Popen([sys.executable, "-m", "agent2389.ops.cli", "monitor", "--broker", mqtt_url,
                                "--agent", agent, "--count", "2"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    # The retained status tells that monitor is subscribed.
    peer.publish(f"/control/agents/{agent}/status", {"agent_id": agent, "status": "available"}, retain=True)
    try:
        first = process.stdout.readline()
        peer.publish(f"/control/agents/{agent}/progress/tools",
                     event(agent, task, "ToolCall", "calling tool file_read\x1b[2J"))
        rest, _ = process.communicate(timeout=15)
    finally:
        peer.publish(f"/control/agents/{agent}/status", b"", retain=True)
    assert "status" in first
    [line] = rest.splitlines()
    assert line.split()[1:7] == ["progress", agent, "ToolCall", "calling", "tool", "file_read"]
    assert "\x1b" not in line  # a terminal escape in a foreign agent's message is not passed on


@pytest.mark.parametrize("last", ["TaskComplete", "TaskError"])
def test_inject_wait_shows_the_answering_agents_last_progress_event_even_when_it_comes_after_the_answer(
    unique_id: str, peer: MqttPeer, announce: Announce, inject_waiting: Any, last: str
) -> None:
    agent = f"late-{unique_id}"
    announce(agent, "available")
    peer.subscribe(f"/control/agents/{agent}/input")
    process = inject_waiting(agent, "question")
    [(_, task, _)] = peer.expect(1)
    answer_topic = f"/conversations/{task['conversation_id']}/{agent}"
    peer.publish(f"/control/agents/{agent}/progress", event(agent, task, "TaskStart", "task started"))
    peer.publish(answer_topic, {"task_id": task["task_id"], "response": "the answer"})
    final = event(agent, task, last, "done")
    final["metadata"] = {"published_to": answer_topic} if last == "TaskComplete" else {"error_code": "llm_error"}
    peer.publish(f"/control/agents/{agent}/progress", final)

    out, err = process.communicate(timeout=20)

    assert process.returncode == 0 and out == "the answer\n", err
    shown = [line.split()[1] for line in err.splitlines() if line.startswith(agent)]
    assert shown == ["TaskStart", last]
