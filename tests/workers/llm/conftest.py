"""Runners pointed at the fake LLM APIs, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from agent2389.config.agent import AgentConfig
from agent2389.state.stats import StatsRecorder
from fakes.anthropic_api import fake_anthropic  # noqa: F401 (the fixture)
from fakes.openai_api import fake_openai  # noqa: F401 (the fixture)
from workers.llm.anthropic_runner import AnthropicRunner


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
