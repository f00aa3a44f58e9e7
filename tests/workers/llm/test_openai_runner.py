"""The openai provider against a fake Chat Completions API: the same loop, budgets and retry policy."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from agent2389.protocol.errors import BudgetExceededError, LLMError
from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from fakes.anthropic_replies import Delay, Failure, Text, ToolUse, tool_calls
from fakes.openai_api import API_KEY_ENV, FakeOpenAI
from tests.workers.llm.agents import agent_for, task
from workers.llm import FleetLimits, build_runner
from workers.llm.openai_runner import OpenAIRunner


@pytest.fixture
def runners() -> Any:
    made: list[OpenAIRunner] = []
    yield made
    for runner in made:
        runner.close()


def runner(made: list[OpenAIRunner], agent: Any) -> OpenAIRunner:
    built = build_runner(agent)
    assert isinstance(built, OpenAIRunner)
    made.append(built)
    return built


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


def test_verification_lists_models(fake_openai: FakeOpenAI, runners: list[OpenAIRunner]) -> None:
    runner(runners, agent_for(fake_openai)).verify()

    assert [(r.method, r.path) for r in fake_openai.requests] == [("GET", "/v1/models")]


def test_system_prompt_and_user_turn_are_sent_and_temperature_only_when_set(
    fake_openai: FakeOpenAI, runners: list[OpenAIRunner]
) -> None:
    fake_openai.reply(Text("first"), Text("second"))
    plain = agent_for(fake_openai, system_prompt="Be brief.")
    warm = agent_for(fake_openai, temperature=0.2)

    assert runner(runners, plain).run(task(plain, "Say", "hi")) == "first"
    assert runner(runners, warm).run(task(warm, "Say", "hi")) == "second"

    first, second = fake_openai.message_requests()
    assert first["messages"] == [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "Say\n\n<input>\nhi\n</input>"}]
    assert first["max_completion_tokens"] == 4000 and "temperature" not in first and "tools" not in first
    assert second["temperature"] == 0.2


def test_tool_calls_run_and_their_results_go_back_until_the_answer(
    fake_openai: FakeOpenAI, runners: list[OpenAIRunner], tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    good, unknown, broken = (ToolUse("file_read", {"path": "a.txt"}), ToolUse("shell", {"cmd": "ls"}),
                             ToolUse("file_read", '{"path": '))
    fake_openai.reply(tool_calls(good, unknown, broken), Text("alpha it is"))
    agent = agent_for(fake_openai, tools={"file_read": {"impl": "builtin", "config": {"root": str(tmp_path)}}})

    assert runner(runners, agent).run(task(agent)) == "alpha it is"

    request = fake_openai.message_requests()[1]
    assert request["tools"][0]["function"]["name"] == "file_read"
    assert [m["tool_call_id"] for m in tool_messages(request)] == [good.id, unknown.id, broken.id]
    ok, refused, invalid = (m["content"] for m in tool_messages(request))
    assert ok == "alpha"
    assert refused == "Error: unknown tool 'shell': this agent's tools are file_read"
    assert invalid == "Error: tool 'file_read' takes a JSON object of parameters"


def test_the_budget_ends_a_loop_that_never_answers(fake_openai: FakeOpenAI, runners: list[OpenAIRunner],
                                                   tmp_path: Path) -> None:
    fake_openai.respond(lambda request: tool_calls(ToolUse("file_read", {"path": "missing"})))
    agent = agent_for(fake_openai, tools={"file_read": {"impl": "builtin", "config": {"root": str(tmp_path)}}},
                      budget={"max_iterations": 2})

    with pytest.raises(BudgetExceededError, match="budget of 2 LLM calls"):
        runner(runners, agent).run(task(agent))


def test_429_is_retried_by_the_sdk_and_401_is_not(fake_openai: FakeOpenAI, runners: list[OpenAIRunner]) -> None:
    fake_openai.reply(Failure(429, headers={"retry-after-ms": "10"}), Text("after the wait"), Failure(401))
    agent = agent_for(fake_openai, max_retries=2)
    one = runner(runners, agent)

    assert one.run(task(agent)) == "after the wait"
    with pytest.raises(LLMError, match=rf"rejected the API key \(HTTP 401\); check {API_KEY_ENV}"):
        one.run(task(agent))
    assert len(fake_openai.message_requests()) == 3


def test_a_slow_server_times_out_with_a_clear_error(fake_openai: FakeOpenAI, runners: list[OpenAIRunner]) -> None:
    fake_openai.reply(Delay(5, Text("late")))
    agent = agent_for(fake_openai, timeout_s=0.5)
    started = time.monotonic()

    with pytest.raises(LLMError, match=r"timed out \(0\.5 s per attempt\)"):
        runner(runners, agent).run(task(agent))
    assert time.monotonic() - started < 3


def test_a_filtered_answer_is_an_llm_error(fake_openai: FakeOpenAI, runners: list[OpenAIRunner]) -> None:
    fake_openai.reply(Text("", stop_reason="refusal"))
    agent = agent_for(fake_openai)

    with pytest.raises(LLMError, match="declined to answer"):
        runner(runners, agent).run(task(agent))


def test_cached_prompt_tokens_are_counted_apart_and_priced(
    fake_openai: FakeOpenAI, redis_client: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    fake_openai.respond(lambda request: Text("ok"))
    agent = agent_for(fake_openai, system_prompt="You are terse. " * 20,
                      price={"input_per_mtok": 2.0, "output_per_mtok": 8.0, "cache_read_per_mtok": 0.5})
    built = OpenAIRunner(agent, StatsRecorder(redis_client, keys))
    try:
        built.run(task(agent))
        built.run(task(agent))
    finally:
        built.close()

    first, second = fake_openai.usages
    cached = second["prompt_tokens_details"]["cached_tokens"]
    stored = redis_client.hgetall(keys.llm_stats("researcher", agent.llm.model))
    assert cached > 0 and "prompt_tokens_details" not in first
    assert int(stored["cache_read_tokens"]) == cached
    assert int(stored["input_tokens"]) == first["prompt_tokens"] + second["prompt_tokens"] - cached
    expected = ((first["prompt_tokens"] + second["prompt_tokens"] - cached) * 2.0 + cached * 0.5
                + (first["completion_tokens"] + second["completion_tokens"]) * 8.0) / 1_000_000
    assert float(stored["cost"]) == pytest.approx(expected)


def test_the_fleet_wide_limits_hold_for_the_openai_provider_too(
    fake_openai: FakeOpenAI, redis_client: redis.Redis, key_prefix: str
) -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Any:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return Text("ok")

    fake_openai.respond(respond)
    agent = agent_for(fake_openai, max_concurrency=2)
    built = [build_runner(agent, None, FleetLimits(redis_client, Keys(key_prefix))) for _ in range(2)]
    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda n: built[n % 2].run(task(agent)), range(24)))
    finally:
        for one in built:
            one.close()

    assert answers == ["ok"] * 24
    assert peak == 2
