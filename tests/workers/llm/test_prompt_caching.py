"""Prompt caching and token accounting against the fake Messages API, which keeps a prompt cache of its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from agent2389.config.agent import AgentConfig
from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from agent2389.state.usage import TokenUsage, cost
from fakes.anthropic_api import FakeAnthropic
from fakes.anthropic_replies import Text, ToolUse, tool_calls
from tests.workers.llm.agents import agent_for, task
from web import inspection
from workers.llm.anthropic_runner import AnthropicRunner

MakeRunner = Callable[..., AnthropicRunner]
EPHEMERAL = {"type": "ephemeral"}


def file_tools(root: Path) -> dict[str, object]:
    return {"file_read": {"impl": "builtin", "config": {"root": str(root)}},
            "file_write": {"impl": "builtin", "config": {"root": str(root)}}}


def test_the_system_prompt_and_the_last_tool_carry_cache_control(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, tmp_path: Path
) -> None:
    fake_anthropic.reply(Text("done"))
    agent = agent_for(fake_anthropic, tools=file_tools(tmp_path), system_prompt="You summarize.")

    runner_for(agent).run(task(agent))

    [request] = fake_anthropic.message_requests()
    assert request["system"] == [{"type": "text", "text": "You summarize.", "cache_control": EPHEMERAL}]
    *first, last = request["tools"]
    assert last["cache_control"] == EPHEMERAL
    assert all("cache_control" not in tool for tool in first) and first


def test_with_prompt_caching_off_nothing_is_marked(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, tmp_path: Path
) -> None:
    fake_anthropic.reply(Text("done"))
    agent = agent_for(fake_anthropic, tools=file_tools(tmp_path), system_prompt="You summarize.",
                      prompt_caching=False)

    runner_for(agent).run(task(agent))

    [request] = fake_anthropic.message_requests()
    assert request["system"] == "You summarize."
    assert all("cache_control" not in tool for tool in request["tools"])
    assert fake_anthropic.usages[0]["cache_creation_input_tokens"] == 0


def test_prompt_caching_must_be_true_or_false() -> None:
    with pytest.raises(ValidationError, match="prompt_caching"):
        AgentConfig.model_validate({"agent": {"id": "a"}, "llm": {"prompt_caching": "sometimes"}})


def test_counted_tokens_and_cost_add_up_to_what_the_api_reported(
    fake_anthropic: FakeAnthropic, runner_for: MakeRunner, tmp_path: Path, redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    keys = Keys(key_prefix)
    fake_anthropic.reply(tool_calls(ToolUse("file_read", {"path": "a.txt"})), Text("alpha"), Text("again"))
    price = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}
    agent = agent_for(fake_anthropic, tools=file_tools(tmp_path), price=price)
    runner = runner_for(agent, StatsRecorder(redis_client, keys))

    runner.run(task(agent))
    runner.run(task(agent))

    reported = fake_anthropic.usages
    stored = redis_client.hgetall(keys.llm_stats("researcher", agent.llm.model))
    assert len(reported) == 3
    assert reported[0]["cache_creation_input_tokens"] > 0 and reported[0]["cache_read_input_tokens"] == 0
    assert all(u["cache_read_input_tokens"] == reported[0]["cache_creation_input_tokens"] for u in reported[1:])
    for field, api_field in (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
                             ("cache_read_tokens", "cache_read_input_tokens"),
                             ("cache_write_tokens", "cache_creation_input_tokens")):
        assert int(stored[field]) == sum(u[api_field] for u in reported), field
    expected_cost = sum(cost(TokenUsage(u["input_tokens"], u["output_tokens"], u["cache_read_input_tokens"],
                                        u["cache_creation_input_tokens"]), agent.llm.price) for u in reported)
    assert float(stored["cost"]) == pytest.approx(expected_cost)
    # Per task, as /api/tasks shows it (the worker's own events add the conversation id).
    summary = inspection.timeline(redis_client, keys, "task-1")
    assert summary is not None
    assert summary["llm_tokens"] == sum(sum(u.values()) for u in reported)
    assert summary["llm_cost"] == pytest.approx(expected_cost)


def test_cache_prices_default_to_anthropics_multipliers_of_the_input_price() -> None:
    agent = AgentConfig.model_validate({"agent": {"id": "a"},
                                        "llm": {"price": {"input_per_mtok": 4.0, "output_per_mtok": 20.0}}})

    spent = cost(TokenUsage(1_000_000, 100_000, 2_000_000, 1_000_000), agent.llm.price)

    assert spent == pytest.approx(4.0 + 2.0 + 2 * 0.4 + 5.0)
    assert cost(TokenUsage(1_000_000), None) == 0.0
