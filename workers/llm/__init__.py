"""LLM providers behind one interface (:class:`workers.llm.base.Runner`)."""

from __future__ import annotations

from agent2389.config.agent import AgentConfig
from agent2389.protocol.errors import ConfigError
from agent2389.state.stats import StatsRecorder
from workers.llm.base import Runner, TaskRequest
from workers.llm.echo import EchoRunner
from workers.llm.limiter import FleetLimits

__all__ = ["FleetLimits", "Runner", "TaskRequest", "build_runner"]


def build_runner(agent: AgentConfig, stats: StatsRecorder | None = None, limits: FleetLimits | None = None) -> Runner:
    """The runner for ``agent``'s configured provider (not yet verified: call ``verify``); with ``limits``
    it obeys the fleet-wide ``[llm]`` limits and daily token budget (anthropic and openai)."""
    if agent.llm.provider == "echo":
        return EchoRunner(agent)
    limiter = limits.limiter(agent.id, agent.llm, stats) if limits else None
    daily = limits.daily_budget(agent.id, agent.llm) if limits else None
    if agent.llm.provider == "anthropic":
        # Imported here: an SDK takes seconds to import, and agents that do not use it never need it.
        from workers.llm.anthropic_runner import AnthropicRunner

        return AnthropicRunner(agent, stats, limiter=limiter, daily_budget=daily)
    if agent.llm.provider == "openai":
        from workers.llm.openai_runner import OpenAIRunner

        return OpenAIRunner(agent, stats, limiter=limiter, daily_budget=daily)
    if limiter is not None:
        limiter.close()
    raise ConfigError(f"LLM provider {agent.llm.provider!r} is not available in this build")
