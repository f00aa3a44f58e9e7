"""The ``[budget]`` of one task: how many LLM calls and tool calls it may make before it fails."""

from __future__ import annotations

from agent2389.config.agent import BudgetSection
from agent2389.protocol.errors import BudgetExceededError


class Budget:
    def __init__(self, limits: BudgetSection) -> None:
        self._limits = limits
        self.llm_calls = 0
        self.tool_calls = 0

    def spend_llm_call(self) -> None:
        if self.llm_calls >= self._limits.max_iterations:
            raise BudgetExceededError(
                f"no final answer within the budget of {self._limits.max_iterations} LLM calls "
                "([budget] max_iterations)"
            )
        self.llm_calls += 1

    def can_call_llm_again(self) -> bool:
        return self.llm_calls < self._limits.max_iterations

    def spend_tool_calls(self, count: int) -> None:
        if self.tool_calls + count > self._limits.max_tool_calls:
            raise BudgetExceededError(
                f"the model asked for more than the budget of {self._limits.max_tool_calls} tool calls "
                "([budget] max_tool_calls)"
            )
        self.tool_calls += count
