"""What every LLM call of an agent goes through at fleet scale, whatever the provider: the daily token
budget and the fleet-wide limiter before it, a 429's pause during it, and its usage and cost after it.

Both SDK-based runners hold one of these; with no limits, budget or stats configured it does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import httpx2

from agent2389.config.agent import AgentConfig
from agent2389.state.stats import StatsRecorder
from agent2389.state.usage import TokenUsage, cost
from workers.llm.daily_budget import DailyBudget
from workers.llm.limiter import FleetLimiter
from workers.llm.policy import retry_after_s


class FleetControls:
    def __init__(self, agent: AgentConfig, stats: StatsRecorder | None = None, limiter: FleetLimiter | None = None,
                 daily_budget: DailyBudget | None = None) -> None:
        self._agent = agent
        self._stats = stats
        self._limiter = limiter
        self._daily_budget = daily_budget

    @contextmanager
    def call(self) -> Iterator[None]:
        """Around one LLM request (the SDK's retries included): raises LLMError when the day's budget is
        spent, waits for the fleet's limits."""
        if self._daily_budget is not None:
            self._daily_budget.check()
        with self._limiter.slot() if self._limiter is not None else nullcontext():
            yield

    def on_response(self, response: httpx2.Response) -> None:
        """An httpx response hook: a 429 with ``retry-after`` pauses the agent's scope fleet-wide."""
        if response.status_code == 429 and self._limiter is not None:
            wait = retry_after_s(response.headers)
            if wait:
                self._limiter.pause(wait)

    def answered(self, task_id: str, duration_s: float, usage: TokenUsage) -> None:
        """An answered call: its stats (with its tokens and cost on the task's timeline), the daily
        budget, the per-minute token limits."""
        price = self._agent.llm.price
        spent = cost(usage, price)
        if self._stats is not None:
            llm = self._agent.llm
            self._stats.llm_call(self._agent.id, llm.model, duration_s, usage.input_tokens, usage.output_tokens,
                                 ok=True, task_id=task_id, cache_read_tokens=usage.cache_read_tokens,
                                 cache_write_tokens=usage.cache_write_tokens,
                                 cost=round(spent, 8) if price else None)
            self._stats.llm_usage(self._agent.id, llm.model, usage, spent, price.currency if price else None)
        if self._daily_budget is not None:
            self._daily_budget.spend(usage)
        if self._limiter is not None:
            # Anthropic counts cache writes, not cache reads, against the input tokens per minute.
            self._limiter.spent(usage.input_tokens + usage.cache_write_tokens, usage.output_tokens)

    def close(self) -> None:
        if self._limiter is not None:
            self._limiter.close()
