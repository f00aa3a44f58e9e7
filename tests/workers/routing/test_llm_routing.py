"""The ``llm`` and ``agent`` strategies on the real Anthropic runner and tool loop, against the fake
Anthropic API (the LLM faked at the HTTP level)."""

from __future__ import annotations

from typing import Any

from agent2389.config.agent import AgentConfig
from agent2389.state.stats import StatsRecorder
from fakes.anthropic_api import MODELS, FakeAnthropic
from fakes.anthropic_replies import Failure, Text, ToolUse, tool_calls
from tests.workers.routing.conftest import Bench, v2_task
from workers.llm import build_runner


def routing_agent(fake: FakeAnthropic, **routing: Any) -> AgentConfig:
    return AgentConfig.model_validate({"agent": {"id": "a"}, "llm": fake.llm_config(), "routing": routing})


def run(bench: Bench, config: AgentConfig, wire: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    runner = build_runner(config, StatsRecorder(bench.redis, bench.keys))
    try:
        return bench.run(config, wire, runner)
    finally:
        runner.close()


def test_the_llm_strategy_makes_one_forced_route_call_with_the_routing_model(
    bench: Bench, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.reply(Text("the research"),
                         tool_calls(ToolUse("route", {"workflow_complete": False, "next_agent": "b",
                                                      "next_instruction": "write it up", "reason": "b writes"})))
    config = routing_agent(fake_anthropic, strategy="llm", llm={"model": MODELS[1]})
    [(topic, sent)] = run(bench, config, v2_task())
    assert topic == "/control/agents/b/input" and sent["input"] == "the research"
    assert sent["instruction"] == "write it up" and sent["routing_trace"][-1]["reason"] == "b writes"
    work, routing = fake_anthropic.message_requests()
    assert work["model"] == MODELS[0] and "tool_choice" not in work
    assert routing["model"] == MODELS[1] and routing["tool_choice"] == {"type": "tool", "name": "route"}
    [tool] = routing["tools"]
    assert tool["name"] == "route" and tool["input_schema"]["properties"]["next_agent"]["enum"] == ["b", "c"]
    question = routing["messages"][0]["content"]
    text = question if isinstance(question, str) else " ".join(block.get("text", "") for block in question)
    assert "the research" in text and "say\\n\\nhi" in text


def test_the_llm_strategy_completes_when_the_route_call_says_so(bench: Bench, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.reply(Text("the answer"), tool_calls(ToolUse("route", {"workflow_complete": True,
                                                                          "reason": "answered"})))
    [(topic, sent)] = run(bench, routing_agent(fake_anthropic, strategy="llm"), v2_task())
    assert topic == "/conversations/c/a" and sent["response"] == "the answer"
    assert sent["routing_trace"][-1]["reason"] == "answered"


def test_a_failing_routing_call_completes_with_the_work_instead_of_an_error(
    bench: Bench, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.reply(Text("the answer"), Failure(500))
    [(topic, sent)] = run(bench, routing_agent(fake_anthropic, strategy="llm"), v2_task())
    assert topic == "/conversations/c/a" and sent["response"] == "the answer"
    assert sent["routing_trace"][-1]["reason"].startswith("routing failed")


def test_the_agent_strategy_hands_off_from_its_own_loop(bench: Bench, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.reply(tool_calls(ToolUse("handoff", {"agent_id": "c", "instruction": "review",
                                                        "input": "my draft", "reason": "c reviews"})))
    [(topic, sent)] = run(bench, routing_agent(fake_anthropic, strategy="agent"), v2_task())
    assert topic == "/control/agents/c/input" and sent["input"] == "my draft" and sent["instruction"] == "review"
    [request] = fake_anthropic.message_requests()
    [handoff] = [t for t in request["tools"] if t["name"] == "handoff"]
    assert handoff["input_schema"]["properties"]["agent_id"]["enum"] == ["b", "c"]


def test_the_agent_strategy_completes_when_the_agent_answers(bench: Bench, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.reply(Text("done myself"))
    [(topic, sent)] = run(bench, routing_agent(fake_anthropic, strategy="agent"), v2_task())
    assert topic == "/conversations/c/a" and sent["response"] == "done myself"
    assert len(fake_anthropic.message_requests()) == 1


def test_a_failing_agent_loop_is_an_llm_error_not_a_routing_decision(
    bench: Bench, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.reply(Failure(400))
    [(topic, sent)] = run(bench, routing_agent(fake_anthropic, strategy="agent"), v2_task())
    assert topic == "/conversations/c/a" and sent["error"]["code"] == "llm_error" and "routing_trace" not in sent
