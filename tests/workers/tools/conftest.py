"""Executors for tool tests, always closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.workers.tools.sample_tools import agent_with_tools
from workers.tools.executor import ToolExecutor


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
