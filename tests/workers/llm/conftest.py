"""Runners pointed at the fake LLM APIs, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent2389.config import AgentConfig
from agent2389.stats import StatsRecorder
from tests.fakes.anthropic_api import FakeAnthropic, fake_anthropic  # noqa: F401 (the fixture)
from tests.fakes.openai_api import FakeOpenAI, fake_openai  # noqa: F401 (the fixture)
from workers.llm.anthropic_runner import AnthropicRunner
from workers.llm.base import TaskRequest


def agent_for(fake: FakeAnthropic | FakeOpenAI, tools: dict[str, Any] | None = None,
                    budget: dict[str, Any] | None = None, **llm: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "researcher"},
        "llm": fake.llm_config(**llm),
        "budget": budget or {},
        "tools": tools or {},
    })


def task(agent: AgentConfig, instruction: str | None = "Summarize", input: Any = "the input") -> TaskRequest:
    return TaskRequest(agent=agent, task_id="task-1", conversation_id="conv-1", instruction=instruction, input=input)


@pytest.fixture
def runner_for() -> Iterator[Callable[..., AnthropicRunner]]:
    made: list[AnthropicRunner] = []

    def make(agent: AgentConfig, stats: StatsRecorder | None = None) -> AnthropicRunner:
        runner = AnthropicRunner(agent, stats)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()
