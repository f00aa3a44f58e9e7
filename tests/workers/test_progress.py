"""Progress events of one task (PROTOCOL.md §10): their shape, their topics, and what they never carry."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent2389.protocol.errors import LLMError
from fakes import anthropic_api
from fakes.anthropic_api import FakeAnthropic
from fakes.anthropic_replies import Failure, Text, ToolUse, tool_calls
from tests.workers.llm.agents import agent_for
from workers.llm.anthropic_runner import AnthropicRunner
from workers.llm.base import TaskRequest
from workers.progress import TaskProgress

fake_anthropic = anthropic_api.fake_anthropic
FIELDS = {"agent_id", "task_id", "conversation_id", "timestamp", "category", "event_type", "message", "metadata"}


class Recorded:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, topic: str, payload: str) -> None:
        self.events.append((topic, json.loads(payload)))

    @property
    def kinds(self) -> list[str]:
        return [event["event_type"] for _, event in self.events]


def test_every_event_has_the_reference_shape_and_its_categorys_topic() -> None:
    sink = Recorded()
    progress = TaskProgress(sink, "researcher", "t-1", "c-1")

    progress.task_start({"text": "hi"})
    progress.llm_request(1, "claude-haiku-5-5", 2)
    progress.tool_call("file_read", {"path": "a.txt"})
    progress.routed("writer", "needs prose", 1)
    progress.task_complete(1.5, "/conversations/c-1/researcher", '{"task_id": "t-1"}')

    topics = [topic for topic, _ in sink.events]
    assert topics == ["/control/agents/researcher/progress", "/control/agents/researcher/progress/llm",
                      "/control/agents/researcher/progress/tools", "/control/agents/researcher/progress",
                      "/control/agents/researcher/progress"]
    assert [e["category"] for _, e in sink.events] == ["General", "LLM", "Tool", "General", "General"]
    assert sink.kinds == ["TaskStart", "LlmRequest", "ToolCall", "Routed", "TaskComplete"]
    for _, event in sink.events:
        assert set(event) == FIELDS
        assert (event["agent_id"], event["task_id"], event["conversation_id"]) == ("researcher", "t-1", "c-1")
        assert event["timestamp"].endswith("Z") and datetime.fromisoformat(event["timestamp"])
    assert sink.events[3][1]["metadata"] == {"to_agent": "writer", "step_number": 1}


def test_tool_events_carry_sizes_never_parameters_or_results_and_name_the_mcp_tool() -> None:
    sink = Recorded()
    progress = TaskProgress(sink, "a", "t", "c")

    progress.tool_call("library__lookup", {"query": "the secret plan"}, mcp_server="library", mcp_tool="lookup")
    progress.tool_complete("library__lookup", 0.25, "the whole secret result", mcp_server="library",
                           mcp_tool="lookup")

    call, done = (event for _, event in sink.events)
    assert "secret" not in json.dumps(sink.events)
    assert call["message"] == "calling MCP tool lookup of library (library__lookup)"
    assert call["metadata"] == {"tool": "library__lookup", "parameters_bytes": 28, "mcp_server": "library",
                                "mcp_tool": "lookup"}
    assert done["metadata"]["result_bytes"] == 23 and done["metadata"]["duration_ms"] == 250


def test_messages_are_sanitized_like_errors() -> None:
    sink = Recorded()
    key = "sk-ant-api03-" + "x" * 40
    TaskProgress(sink, "a", "t", "c", secrets=[key]).llm_error(1, 0.1, f"rejected key {key} at /home/me/app.py")

    [(_, event)] = sink.events
    assert key not in event["message"] and "/home/me" not in event["message"]
    assert event["message"].startswith("LLM call 1 failed: rejected key")


def test_the_tool_loop_tells_each_llm_and_tool_call_in_order(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    fake_anthropic.reply(tool_calls(ToolUse("file_read", {"path": "a.txt"}), ToolUse("file_read", {"path": "no"})),
                         Text("done"))
    agent = agent_for(fake_anthropic, tools={"file_read": {"impl": "builtin", "config": {"root": str(tmp_path)}}})
    sink = Recorded()
    runner = AnthropicRunner(agent)
    try:
        answer = runner.run(TaskRequest(agent, "t-1", "c-1", "read", "a.txt",
                                        progress=TaskProgress(sink, agent.id, "t-1", "c-1")))
    finally:
        runner.close()

    assert answer == "done"
    assert sink.kinds[:2] == sink.kinds[6:] == ["LlmRequest", "LlmResponse"]
    # The two calls of one turn run at the same time: their events may interleave.
    assert sorted(sink.kinds[2:6]) == ["ToolCall", "ToolCall", "ToolComplete", "ToolError"]
    error = next(event for _, event in sink.events if event["event_type"] == "ToolError")
    assert error["message"].startswith("tool file_read failed:") and error["metadata"]["tool"] == "file_read"


def test_a_failed_llm_call_is_an_llm_error_event(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.reply(Failure(401))
    agent = agent_for(fake_anthropic)
    sink = Recorded()
    runner = AnthropicRunner(agent)
    try:
        with pytest.raises(LLMError):
            runner.run(TaskRequest(agent, "t-1", "c-1", None, "hi", progress=TaskProgress(sink, agent.id, "t-1", "c")))
    finally:
        runner.close()

    assert sink.kinds == ["LlmRequest", "LlmError"]
    assert "HTTP 401" in sink.events[1][1]["message"]


def test_a_tool_name_the_llm_made_up_is_not_repeated_unless_it_is_a_valid_name() -> None:
    sink = Recorded()
    TaskProgress(sink, "a", "t", "c").tool_call("cat /etc/passwd", {})

    [(_, event)] = sink.events
    assert event["message"] == "calling tool (a tool name that is not valid)"
    assert event["metadata"]["tool"] == "(a tool name that is not valid)"
