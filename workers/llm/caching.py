"""Anthropic prompt caching: what an agent sends with every call (tools, then system prompt) is marked
with ``cache_control`` so that repeated calls read it from the provider's cache instead of paying for it.

The API caches the prefix of a request up to each marked block, in the order tools, system, messages:
one mark on the last tool and one on the system prompt cache both (two of the four marks a request may
carry). A prefix shorter than the model's minimum (1,024 tokens for most models) is simply not cached.
"""

from __future__ import annotations

from typing import Any

from anthropic.types import TextBlockParam, ToolParam, Usage

from agent2389.config.agent import LlmSection
from agent2389.state.usage import TokenUsage
from workers.tools.base import ToolDescription

EPHEMERAL: Any = {"type": "ephemeral"}


def system_param(llm: LlmSection) -> str | list[TextBlockParam] | None:
    if not llm.system_prompt:
        return None
    if not llm.prompt_caching:
        return llm.system_prompt
    return [{"type": "text", "text": llm.system_prompt, "cache_control": EPHEMERAL}]


def tools_param(descriptions: list[ToolDescription], llm: LlmSection) -> list[ToolParam]:
    tools: list[ToolParam] = [
        {"name": d["name"], "description": d["description"], "input_schema": d["parameters"]}
        for d in descriptions
    ]
    if tools and llm.prompt_caching:
        tools[-1] = {**tools[-1], "cache_control": EPHEMERAL}
    return tools


def token_usage(usage: Usage) -> TokenUsage:
    return TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        cache_write_tokens=usage.cache_creation_input_tokens or 0,
    )
