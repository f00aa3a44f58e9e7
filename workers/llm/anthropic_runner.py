"""The ``anthropic`` provider: Claude through the official SDK, in the shared tool loop
(:mod:`workers.llm.tool_loop`); this module only speaks the Messages API. Requests go out through the SDK's
async client on the provider's event loop (:mod:`workers.llm.call_loop`) while the task's thread waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import anthropic
import httpx2
from anthropic.types import Message, MessageParam, ToolChoiceToolParam, ToolResultBlockParam

from agent2389.config.agent import AgentConfig, LlmSection
from agent2389.protocol.errors import LLMError
from agent2389.state.stats import StatsRecorder
from agent2389.state.usage import TokenUsage
from workers.llm import policy
from workers.llm.anthropic_client import llm_error, make_async_client
from workers.llm.caching import system_param, token_usage, tools_param
from workers.llm.call_loop import LoopClient
from workers.llm.daily_budget import DailyBudget
from workers.llm.limiter import FleetLimiter
from workers.llm.provider import ToolUse, Turn
from workers.llm.tool_loop import ToolLoopRunner
from workers.tools.base import ToolDescription
from workers.tools.executor import ToolExecutor, ToolOutcome

log = logging.getLogger("agent2389.llm")
MODELS_PAGE_SIZE = 1000


class AnthropicRunner(ToolLoopRunner):
    def __init__(self, agent: AgentConfig, stats: StatsRecorder | None = None,
                 tools: ToolExecutor | None = None, limiter: FleetLimiter | None = None,
                 daily_budget: DailyBudget | None = None) -> None:
        super().__init__(agent, lambda on_response: AnthropicProvider(agent.llm, on_response), stats, tools,
                         limiter, daily_budget)


class AnthropicProvider:
    def __init__(self, llm: LlmSection, on_response: Callable[[httpx2.Response], None]) -> None:
        self._llm = llm
        self._client = LoopClient(f"llm-{llm.provider}", lambda: make_async_client(llm, [on_response]),
                                  policy.call_deadline_s(llm))

    def open(self) -> None:
        self._client.get()

    def verify(self) -> None:
        try:
            page = self._client.run(_models_page)
        except Exception as exc:
            raise llm_error(exc, self._llm) from None
        if "temperature" in self._llm.model_fields_set:
            log.warning("[llm] temperature is ignored: the Anthropic API version this SDK speaks rejects it")
        model = self._llm.model
        if not any(info.id == model or info.id.startswith(f"{model}-") for info in page.data):
            log.warning("model %s is not in the provider's model list; it may be an alias", model)

    def conversation(self, user_text: str) -> list[Any]:
        first: MessageParam = {"role": "user", "content": user_text}
        return [first]

    def turn(self, messages: list[Any], tools: Sequence[ToolDescription], force_tool: str | None = None,
             model: str | None = None) -> Turn:
        choice: ToolChoiceToolParam | anthropic.Omit = (
            {"type": "tool", "name": force_tool} if force_tool else anthropic.omit)
        system = system_param(self._llm) or anthropic.omit
        offered = tools_param(list(tools), self._llm) or anthropic.omit
        response = self._client.run(lambda client: client.messages.create(
            model=model or self._llm.model, max_tokens=self._llm.max_tokens, messages=messages, system=system,
            tools=offered, tool_choice=choice,
        ))
        return _turn(response)

    def add_results(self, messages: list[Any], turn: Turn, outcomes: Sequence[ToolOutcome]) -> None:
        response: Message = turn.raw
        messages.append({"role": "assistant", "content": [_as_param(block) for block in response.content]})
        messages.append({"role": "user", "content": [
            _tool_result(call.id, outcome) for call, outcome in zip(turn.calls, outcomes, strict=True)
        ]})

    def error(self, exc: Exception) -> LLMError:
        return llm_error(exc, self._llm)

    def close(self) -> None:
        self._client.close()


async def _models_page(client: anthropic.AsyncAnthropic) -> Any:
    return await client.models.list(limit=MODELS_PAGE_SIZE)


def _turn(response: Message) -> Turn:
    calls = [ToolUse(block.id, block.name, block.input) for block in response.content if block.type == "tool_use"]
    reason = response.stop_reason or "unknown"
    usage: TokenUsage = token_usage(response.usage)
    return Turn(
        text="".join(block.text for block in response.content if block.type == "text"),
        calls=calls if response.stop_reason == "tool_use" else [],
        usage=usage,
        stop=f"stop reason: {reason}",
        declined="stop reason: refusal" if response.stop_reason == "refusal" else None,
        raw=response,
    )


def _as_param(block: Any) -> Any:
    """The assistant's content as a request block (only text and tool use can appear: no server tools)."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return block.to_dict()


def _tool_result(tool_use_id: str, outcome: ToolOutcome) -> ToolResultBlockParam:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": outcome.content or "(empty result)",
            "is_error": outcome.is_error}
