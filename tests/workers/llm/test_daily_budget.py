"""``[llm] daily_token_budget`` on real Redis, with the day moved forward by an injected clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from agent2389.protocol.errors import ErrorCode, LLMError
from agent2389.state.keys import Keys
from fakes.anthropic_api import FakeAnthropic
from fakes.anthropic_replies import Text
from tests.workers.llm.agents import agent_for, task
from workers.llm.anthropic_runner import AnthropicRunner
from workers.llm.daily_budget import DailyBudget

MakeRunner = Callable[..., AnthropicRunner]
NOON = 1_796_040_000.0  # 2026-11-30 12:00 UTC


def test_once_the_days_tokens_are_spent_the_agent_answers_budget_exhausted_without_calling(
    fake_anthropic: FakeAnthropic, redis_client: redis.Redis, key_prefix: str
) -> None:
    now = [NOON]
    fake_anthropic.respond(lambda request: Text("answered"))
    agent = agent_for(fake_anthropic, daily_token_budget=1)
    budget = DailyBudget(redis_client, Keys(key_prefix), "researcher", 1, clock=lambda: now[0])
    runner = AnthropicRunner(agent, daily_budget=budget)
    try:
        assert runner.run(task(agent)) == "answered"
        with pytest.raises(LLMError) as raised:
            runner.run(task(agent))
        calls_that_day = len(fake_anthropic.message_requests())
        now[0] += 12 * 3600  # midnight UTC: a new day, a new budget
        assert runner.run(task(agent)) == "answered"
    finally:
        runner.close()

    used = sum(sum(u.values()) for u in fake_anthropic.usages[:1])
    assert raised.value.code is ErrorCode.LLM_ERROR
    assert str(raised.value) == (f"daily budget exhausted: {used} of 1 tokens used today (UTC 2026-11-30; "
                                 "[llm] daily_token_budget); the agent answers again tomorrow")
    assert calls_that_day == 1


def test_the_budget_is_shared_by_every_worker_of_the_agent(
    fake_anthropic: FakeAnthropic, redis_client: redis.Redis, key_prefix: str
) -> None:
    fake_anthropic.respond(lambda request: Text("answered"))
    agent = agent_for(fake_anthropic)
    budgets = [DailyBudget(redis_client, Keys(key_prefix), "researcher", 1, clock=lambda: NOON) for _ in range(2)]
    runners = [AnthropicRunner(agent, daily_budget=b) for b in budgets]
    try:
        runners[0].run(task(agent))
        with pytest.raises(LLMError, match="daily budget exhausted"):
            runners[1].run(task(agent))
    finally:
        for runner in runners:
            runner.close()


def test_a_worker_built_runner_takes_the_budget_from_the_agent_file(
    fake_anthropic: FakeAnthropic, redis_client: redis.Redis, key_prefix: str
) -> None:
    from workers.llm import FleetLimits, build_runner

    fake_anthropic.respond(lambda request: Text("answered"))
    agent = agent_for(fake_anthropic, daily_token_budget=1)
    runner = build_runner(agent, None, FleetLimits(redis_client, Keys(key_prefix)))
    try:
        runner.run(task(agent))
        with pytest.raises(LLMError, match="daily budget exhausted"):
            runner.run(task(agent))
    finally:
        runner.close()
