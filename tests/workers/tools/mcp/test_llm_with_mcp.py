"""The LLM side: Claude (the fake Messages API) asks for an MCP tool, reads its result and answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.anthropic_api import FakeAnthropic, fake_anthropic  # noqa: F401 (the fixture)
from fakes.anthropic_replies import Text, ToolUse, tool_calls, tool_results
from tests.workers.llm.agents import agent_for, task
from tests.workers.tools.mcp.conftest import stdio_entry
from workers.llm.anthropic_runner import AnthropicRunner

# An MCP server runs as a process of its own.
pytestmark = pytest.mark.slow


def test_the_model_calls_an_mcp_tool_gets_its_result_and_answers(
    fake_anthropic: FakeAnthropic, marks: Path  # noqa: F811 (the fixture)
) -> None:
    call = ToolUse("notes__echo", {"text": "from the model"})
    failing = ToolUse("notes__fail", {})
    fake_anthropic.reply(tool_calls(call, failing), Text("The server said: echo: from the model"))
    agent = agent_for(fake_anthropic, tools={"notes": stdio_entry(allow=["echo", "fail"])})
    runner = AnthropicRunner(agent)
    try:
        runner.verify()
        answer = runner.run(task(agent))
    finally:
        runner.close()

    first, second = fake_anthropic.message_requests()
    offered = {tool["name"]: tool for tool in first["tools"]}
    assert set(offered) == {"notes__echo", "notes__fail"}
    assert offered["notes__echo"]["input_schema"]["required"] == ["text"]
    assert tool_results(second) == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "echo: from the model", "is_error": False},
        {"type": "tool_result", "tool_use_id": failing.id, "is_error": True,
         "content": "tool 'notes__fail' failed: the MCP tool reported an error: "
                    "Error executing tool fail: the tool failed on purpose"},
    ]
    assert answer == "The server said: echo: from the model"
