"""Agents and tasks made to order for the LLM tests, pointed at a fake API."""

from __future__ import annotations

from typing import Any

from agent2389.config.agent import AgentConfig
from fakes.anthropic_api import FakeAnthropic
from fakes.openai_api import FakeOpenAI
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
