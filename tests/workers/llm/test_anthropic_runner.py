"""The tool-use loop against the fake Messages API: what is sent, what tools run, and how budgets end it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from agent2389.protocol.errors import BudgetExceededError, ErrorCode, LLMError
from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from fakes.anthropic_api import FakeAnthropic
from fakes.anthropic_replies import Text, ToolUse, tool_calls, tool_results
from tests.workers.llm.agents import agent_for, task
from tests.workers.tools.sample_tools import SAMPLE
from workers.llm.anthropic_runner import AnthropicRunner

MakeRunner = Callable[..., AnthropicRunner]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("bravo")
    return tmp_path


def file_tools(root: Path) -> dict[str, Any]:
    return {"file_read": {"impl": "builtin", "config": {"root": str(root)}}}


def test_a_plain_task_sends_system_prompt_and_the_user_turn(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner
) -> None:
    fake_anthropic.reply(Text("  the summary  "))
    agent = agent_for(fake_anthropic, system_prompt="You summarize.", prompt_caching=False)

    answer = runner_for(agent).run(task(agent, "Summarize", {"text": "long"}))

    [request] = fake_anthropic.message_requests()
    assert answer == "the summary"
    assert request["system"] == "You summarize."
    user_turn = 'Summarize\n\n<input>\n{\n  "text": "long"\n}\n</input>'
    assert request["messages"] == [{"role": "user", "content": user_turn}]
    assert "tools" not in request and "temperature" not in request


def test_every_allowed_tool_is_offered_with_its_schema(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, data: Path
) -> None:
    fake_anthropic.reply(Text("no tools needed"))
    agent = agent_for(fake_anthropic, tools={**file_tools(data), "echo": {"impl": SAMPLE + "EchoTool"}})

    runner_for(agent).run(task(agent))

    offered = {tool["name"]: tool for tool in fake_anthropic.message_requests()[0]["tools"]}
    assert set(offered) == {"file_read", "echo"}
    assert offered["file_read"]["input_schema"]["required"] == ["path"]
    assert offered["echo"]["input_schema"]["properties"] == {"text": {"type": "string"}}


def test_a_multi_step_tool_loop_feeds_each_result_back_until_the_answer(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, data: Path
) -> None:
    first, second = ToolUse("file_read", {"path": "a.txt"}), ToolUse("file_read", {"path": "b.txt"})
    fake_anthropic.reply(tool_calls(first, text="Reading a."), tool_calls(second), Text("alpha then bravo"))
    agent = agent_for(fake_anthropic, tools=file_tools(data))

    answer = runner_for(agent).run(task(agent))

    requests = fake_anthropic.message_requests()
    assert answer == "alpha then bravo"
    assert len(requests) == 3
    assert tool_results(requests[1]) == [{"type": "tool_result", "tool_use_id": first.id, "content": "alpha",
                                          "is_error": False}]
    assert tool_results(requests[2])[0]["content"] == "bravo"
    assert requests[1]["messages"][1]["content"][0] == {"type": "text", "text": "Reading a."}


def test_parallel_tool_calls_in_one_turn_run_together_and_answer_in_order(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner
) -> None:
    calls = [ToolUse("sleep", {"seconds": 1}) for _ in range(3)]
    fake_anthropic.reply(tool_calls(*calls), Text("rested"))
    agent = agent_for(fake_anthropic, tools={"sleep": {"impl": SAMPLE + "SleepTool"}})
    runner = runner_for(agent)
    runner.verify()
    started = time.monotonic()

    assert runner.run(task(agent)) == "rested"

    results = tool_results(fake_anthropic.message_requests()[1])
    assert [r["tool_use_id"] for r in results] == [c.id for c in calls]
    assert all(r["content"] == "slept 1 s" and not r["is_error"] for r in results)
    assert time.monotonic() - started < 2.5


def test_an_unknown_tool_and_bad_parameters_become_error_results_and_the_loop_goes_on(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, data: Path
) -> None:
    fake_anthropic.reply(
        tool_calls(ToolUse("delete_everything", {}), ToolUse("file_read", {"file": "a.txt"}),
                   ToolUse("file_read", {"path": "../../etc/passwd"})),
        Text("I could not read anything"),
    )
    agent = agent_for(fake_anthropic, tools=file_tools(data))

    answer = runner_for(agent).run(task(agent))

    unknown, invalid, escaped = tool_results(fake_anthropic.message_requests()[1])
    assert answer == "I could not read anything"
    assert unknown["is_error"]
    assert unknown["content"] == "unknown tool 'delete_everything': this agent's tools are file_read"
    assert invalid["is_error"] and invalid["content"].startswith("invalid parameters for tool 'file_read'")
    assert escaped["is_error"] and "contains '..'" in escaped["content"]


def test_a_hanging_tool_is_stopped_and_the_llm_is_told(fake_anthropic: FakeAnthropic, runner_for: MakeRunner) -> None:
    fake_anthropic.reply(tool_calls(ToolUse("spin", {})), Text("the tool hung, sorry"))
    agent = agent_for(fake_anthropic, tools={"spin": {"impl": SAMPLE + "SpinTool", "timeout_s": 0.5}})

    assert runner_for(agent).run(task(agent)) == "the tool hung, sorry"

    [result] = tool_results(fake_anthropic.message_requests()[1])
    assert result["is_error"] and "did not finish within 0.5 s and was stopped" in result["content"]


def test_a_hanging_tool_does_not_hold_up_other_tasks(fake_anthropic: FakeAnthropic, runner_for: MakeRunner) -> None:
    tool_called = threading.Event()

    def respond(request: dict[str, Any]) -> Any:
        if request["messages"][0]["content"] != "hang":
            return Text("quick answer")
        if tool_results(request):
            return Text("gave up on the tool")
        tool_called.set()
        return tool_calls(ToolUse("spin", {}))

    fake_anthropic.respond(respond)
    agent = agent_for(fake_anthropic, tools={"spin": {"impl": SAMPLE + "SpinTool", "timeout_s": 2}})
    runner = runner_for(agent)
    runner.verify()
    answers: dict[str, str] = {}
    hanging = threading.Thread(target=lambda: answers.update(hang=runner.run(task(agent, None, "hang"))))
    hanging.start()
    assert tool_called.wait(10), "the hanging task never called its tool"

    quick = runner.run(task(agent, None, "quick"))
    still_hanging = hanging.is_alive()
    hanging.join(timeout=10)

    assert quick == "quick answer" and still_hanging
    assert answers == {"hang": "gave up on the tool"}


def test_a_tool_that_fails_then_succeeds_on_retry_gives_the_llm_the_result(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, tmp_path: Path
) -> None:
    fake_anthropic.reply(tool_calls(ToolUse("flaky", {})), Text("done"))
    flaky = {"impl": SAMPLE + "FlakyTool", "retries": 2, "config": {"counter": str(tmp_path / "n"), "failures": 1}}
    agent = agent_for(fake_anthropic, tools={"flaky": flaky})

    runner_for(agent).run(task(agent))

    [result] = tool_results(fake_anthropic.message_requests()[1])
    assert result == {"type": "tool_result", "tool_use_id": result["tool_use_id"],
                      "content": "succeeded on attempt 2", "is_error": False}


def test_running_out_of_llm_calls_fails_the_task_with_tool_execution_failed(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, data: Path
) -> None:
    fake_anthropic.respond(lambda request: tool_calls(ToolUse("file_read", {"path": "a.txt"})))
    agent = agent_for(fake_anthropic, tools=file_tools(data), budget={"max_iterations": 3})

    with pytest.raises(BudgetExceededError) as raised:
        runner_for(agent).run(task(agent))

    assert raised.value.code is ErrorCode.TOOL_EXECUTION_FAILED
    assert str(raised.value) == "no final answer within the budget of 3 LLM calls ([budget] max_iterations)"
    assert len(fake_anthropic.message_requests()) == 3


def test_asking_for_more_tool_calls_than_the_budget_fails_before_running_them(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, tmp_path: Path
) -> None:
    counter = tmp_path / "n"
    broken = {"impl": SAMPLE + "BrokenTool", "config": {"counter": str(counter)}}
    fake_anthropic.reply(tool_calls(ToolUse("broken", {})), tool_calls(ToolUse("broken", {}), ToolUse("broken", {})))
    agent = agent_for(fake_anthropic, tools={"broken": broken}, budget={"max_tool_calls": 2})

    with pytest.raises(BudgetExceededError, match=r"more than the budget of 2 tool calls"):
        runner_for(agent).run(task(agent))

    assert counter.read_text() == "1"


def test_a_refusal_or_an_empty_answer_is_an_llm_error(fake_anthropic: FakeAnthropic, runner_for: MakeRunner) -> None:
    fake_anthropic.reply(Text("I won't", stop_reason="refusal"), Text("", stop_reason="max_tokens"))
    agent = agent_for(fake_anthropic)
    runner = runner_for(agent)

    with pytest.raises(LLMError, match="declined to answer"):
        runner.run(task(agent))
    with pytest.raises(LLMError, match=r"without any text \(stop reason: max_tokens\)"):
        runner.run(task(agent))


def test_one_runner_serves_many_tasks_at_once(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, data: Path
) -> None:
    def respond(request: dict[str, Any]) -> Any:
        results = tool_results(request)
        if results:
            return Text(f"read {results[0]['content']} for {request['messages'][0]['content']}")
        return tool_calls(ToolUse("file_read", {"path": "a.txt"}))

    fake_anthropic.respond(respond)
    agent = agent_for(fake_anthropic, tools=file_tools(data))
    runner = runner_for(agent)
    answers: dict[int, str] = {}

    def one(n: int) -> None:
        answers[n] = runner.run(task(agent, instruction=None, input=f"task {n}"))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == {n: f"read alpha for task {n}" for n in range(8)}


def test_tokens_latency_and_tool_calls_are_recorded_per_agent_model_and_task(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, data: Path, redis_client: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    fake_anthropic.reply(tool_calls(ToolUse("file_read", {"path": "a.txt"})), Text("alpha"))
    agent = agent_for(fake_anthropic, tools=file_tools(data))

    runner_for(agent, StatsRecorder(redis_client, keys)).run(task(agent))

    llm = redis_client.hgetall(keys.llm_stats("researcher", agent.llm.model))
    tool = redis_client.hgetall(keys.tool_stats("researcher", "file_read"))
    timeline = [json.loads(e) for e in redis_client.lrange(keys.task_timeline("task-1"), 0, -1)]
    assert llm["calls"] == "2" and int(llm["input_tokens"]) > 0 and int(llm["output_tokens"]) > 0
    assert float(llm["duration_seconds_sum"]) > 0
    assert tool["executions"] == "1"
    assert [e["event"] for e in timeline] == ["llm_call", "tool_call", "llm_call"]
