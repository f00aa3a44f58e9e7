"""The shared tool loop's hooks for dynamic routing, on both providers: a terminal tool ends the loop, and
a forced call answers through the one tool it was given."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from agent2389.config.agent import AgentConfig
from agent2389.protocol.errors import LLMError
from fakes.anthropic_api import FakeAnthropic
from fakes.anthropic_replies import Text, ToolUse, tool_calls
from fakes.openai_api import FakeOpenAI
from tests.workers.llm.agents import agent_for, task
from tests.workers.tools.sample_tools import SAMPLE
from workers.llm.anthropic_runner import AnthropicRunner
from workers.llm.openai_runner import OpenAIRunner
from workers.llm.tool_loop import TerminalCall, ToolLoopRunner
from workers.tools.base import ToolDescription

HANDOFF = ToolDescription(name="handoff", description="Hand the work to another agent", parameters={
    "type": "object", "properties": {"agent_id": {"type": "string"}, "input": {"type": "string"}},
    "required": ["agent_id", "input"]})
ROUTE = ToolDescription(name="route", description="Decide where the work goes", parameters={
    "type": "object", "properties": {"workflow_complete": {"type": "boolean"}}, "required": ["workflow_complete"]})


@pytest.fixture(params=["anthropic", "openai"])
def fake(request: pytest.FixtureRequest) -> FakeAnthropic | FakeOpenAI:
    fixture = "fake_anthropic" if request.param == "anthropic" else "fake_openai"
    api: FakeAnthropic | FakeOpenAI = request.getfixturevalue(fixture)
    return api


@pytest.fixture
def runner_of() -> Iterator[Callable[[AgentConfig], ToolLoopRunner]]:
    made: list[ToolLoopRunner] = []

    def make(agent: AgentConfig) -> ToolLoopRunner:
        runner = AnthropicRunner(agent) if agent.llm.provider == "anthropic" else OpenAIRunner(agent)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


def offered_tools(fake: FakeAnthropic | FakeOpenAI, index: int) -> set[str]:
    tools = fake.message_requests()[index].get("tools", [])
    return {tool.get("name") or tool["function"]["name"] for tool in tools}


def test_calling_a_terminal_tool_ends_the_loop_with_its_parameters_after_other_tools_ran(
    fake: FakeAnthropic | FakeOpenAI, runner_of: Callable[[AgentConfig], ToolLoopRunner]
) -> None:
    fake.reply(tool_calls(ToolUse("echo", {"text": "draft"})),
               tool_calls(ToolUse("handoff", {"agent_id": "writer", "input": "the notes"})))
    agent = agent_for(fake, tools={"echo": {"impl": SAMPLE + "EchoTool"}})

    result = runner_of(agent).run_until(task(agent), terminal=[HANDOFF])

    assert result == TerminalCall("handoff", {"agent_id": "writer", "input": "the notes"})
    assert len(fake.message_requests()) == 2
    assert offered_tools(fake, 0) == {"echo", "handoff"}


def test_an_answer_without_the_terminal_tool_is_the_final_text(
    fake: FakeAnthropic | FakeOpenAI, runner_of: Callable[[AgentConfig], ToolLoopRunner]
) -> None:
    fake.reply(Text("done here"))
    agent = agent_for(fake)

    assert runner_of(agent).run_until(task(agent), terminal=[HANDOFF]) == "done here"


def test_a_forced_call_asks_for_that_tool_and_returns_its_parameters(
    fake: FakeAnthropic | FakeOpenAI, runner_of: Callable[[AgentConfig], ToolLoopRunner]
) -> None:
    fake.reply(tool_calls(ToolUse("route", {"workflow_complete": True})))
    agent = agent_for(fake, tools={"echo": {"impl": SAMPLE + "EchoTool"}})

    decision = runner_of(agent).forced_call("task-1", "Where next?", ROUTE, model="claude-haiku-5-5")

    [request] = fake.message_requests()
    assert decision == {"workflow_complete": True}
    assert request["model"] == "claude-haiku-5-5"
    assert offered_tools(fake, 0) == {"route"}
    assert request["tool_choice"] in ({"type": "tool", "name": "route"},
                                      {"type": "function", "function": {"name": "route"}})


def test_a_forced_call_answered_with_text_is_an_llm_error(
    fake: FakeAnthropic | FakeOpenAI, runner_of: Callable[[AgentConfig], ToolLoopRunner]
) -> None:
    fake.reply(Text("I would rather chat"))
    agent = agent_for(fake)

    with pytest.raises(LLMError, match="did not call the route tool"):
        runner_of(agent).forced_call("task-1", "Where next?", ROUTE)
