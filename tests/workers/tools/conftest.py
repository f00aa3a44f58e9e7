"""Agents made to order for tool tests, and executors that are always closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent2389.config import AgentConfig
from workers.tools.executor import ToolExecutor

SAMPLE = "python:tests.workers.tools.sample_tools:"


def agent_with_tools(tools: dict[str, Any], **sections: Any) -> AgentConfig:
    return AgentConfig.model_validate({"agent": {"id": "tool-tester"}, "llm": {"provider": "echo"},
                                       "tools": tools, **sections})


@pytest.fixture
def executor_for() -> Iterator[Callable[..., ToolExecutor]]:
    """``executor_for({"echo": {"impl": SAMPLE + "EchoTool"}})``: a started executor, closed after the test."""
    made: list[ToolExecutor] = []

    def make(tools: dict[str, Any], start: bool = True, **kwargs: Any) -> ToolExecutor:
        executor = ToolExecutor(agent_with_tools(tools), **kwargs)
        made.append(executor)
        if start:
            executor.start()
        return executor

    yield make
    for executor in made:
        executor.close()
