"""The ``openai`` provider: the OpenAI Chat Completions API, or any compatible server (vLLM, Ollama, ...)
through ``base_url``, in the same tool loop as the anthropic provider (:mod:`workers.llm.tool_loop`); this
module only speaks Chat Completions.

The retry and time-out policy is :mod:`workers.llm.policy`, carried out by the official SDK. Requests go out
through the SDK's async client on the provider's event loop (:mod:`workers.llm.call_loop`) while the task's
thread waits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallUnionParam,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionToolParam,
)

from agent2389.config.agent import AgentConfig, LlmSection
from agent2389.protocol.errors import LLMError
from agent2389.state.stats import StatsRecorder
from agent2389.state.usage import TokenUsage
from workers.llm import policy
from workers.llm.call_loop import LoopClient, async_hooks
from workers.llm.daily_budget import DailyBudget
from workers.llm.limiter import FleetLimiter
from workers.llm.provider import ToolUse, Turn
from workers.llm.tool_loop import ToolLoopRunner
from workers.tools.base import ToolDescription
from workers.tools.executor import ToolExecutor, ToolOutcome


class OpenAIRunner(ToolLoopRunner):
    def __init__(self, agent: AgentConfig, stats: StatsRecorder | None = None,
                 tools: ToolExecutor | None = None, limiter: FleetLimiter | None = None,
                 daily_budget: DailyBudget | None = None) -> None:
        super().__init__(agent, lambda on_response: OpenAIProvider(agent.llm, on_response), stats, tools,
                         limiter, daily_budget)


class OpenAIProvider:
    def __init__(self, llm: LlmSection, on_response: Callable[[httpx2.Response], None]) -> None:
        self._llm = llm
        self._client = LoopClient(f"llm-{llm.provider}", lambda: _make_client(llm, on_response),
                                  policy.call_deadline_s(llm))

    def open(self) -> None:
        self._client.get()

    def verify(self) -> None:
        try:
            self._client.run(_models_page)
        except Exception as exc:
            raise llm_error(exc, self._llm) from None

    def conversation(self, user_text: str) -> list[Any]:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": user_text}]
        if self._llm.system_prompt:
            messages.insert(0, {"role": "system", "content": self._llm.system_prompt})
        return messages

    def turn(self, messages: list[Any], tools: Sequence[ToolDescription], force_tool: str | None = None,
             model: str | None = None) -> Turn:
        offered: list[ChatCompletionToolParam] = [
            {"type": "function", "function": {"name": d["name"], "description": d["description"],
                                              "parameters": d["parameters"]}}
            for d in tools
        ]
        choice: ChatCompletionNamedToolChoiceParam | openai.Omit = (
            {"type": "function", "function": {"name": force_tool}} if force_tool else openai.omit)
        # Reasoning models reject a temperature: send one only when the agent file sets it.
        temperature = self._llm.temperature if "temperature" in self._llm.model_fields_set else openai.omit
        completion = self._client.run(lambda client: client.chat.completions.create(
            model=model or self._llm.model, messages=messages, max_completion_tokens=self._llm.max_tokens,
            temperature=temperature, tools=offered or openai.omit, tool_choice=choice,
        ))
        return _turn(completion)

    def add_results(self, messages: list[Any], turn: Turn, outcomes: Sequence[ToolOutcome]) -> None:
        message = turn.raw.message
        messages.append({"role": "assistant", "content": message.content,
                         "tool_calls": [_as_param(call) for call in message.tool_calls or []]})
        messages.extend({"role": "tool", "tool_call_id": call.id, "content": _content(outcome)}
                        for call, outcome in zip(turn.calls, outcomes, strict=True))

    def error(self, exc: Exception) -> LLMError:
        return llm_error(exc, self._llm)

    def close(self) -> None:
        self._client.close()


def _make_client(llm: LlmSection, on_response: Callable[[httpx2.Response], None]) -> openai.AsyncOpenAI:
    hooks = async_hooks(policy.refuse_long_retry_after, on_response)
    http_client = openai.DefaultAioHttpClient(event_hooks={"response": hooks}, limits=policy.CONNECTION_LIMITS,
                                              verify=policy.ssl_context())
    return openai.AsyncOpenAI(api_key=policy.api_key(llm), base_url=llm.base_url, timeout=policy.request_timeout(llm),
                         max_retries=llm.max_retries, http_client=http_client)


async def _models_page(client: openai.AsyncOpenAI) -> Any:
    return await client.models.list()


def _turn(completion: ChatCompletion) -> Turn:
    usage = _token_usage(completion)
    if not completion.choices:
        return Turn(text="", calls=[], usage=usage, stop="no choice",
                    problem="the LLM provider answered without a choice")
    choice = completion.choices[0]
    calls = [ToolUse(call.id, *_name_and_parameters(call)) for call in choice.message.tool_calls or []]
    return Turn(
        text=choice.message.content or "",
        calls=calls,
        usage=usage,
        stop=f"finish reason: {choice.finish_reason}",
        declined="content filter" if choice.finish_reason == "content_filter" else None,
        raw=choice,
    )


def _token_usage(completion: ChatCompletion) -> TokenUsage:
    """OpenAI counts cached tokens inside ``prompt_tokens``; here they are apart, as Anthropic reports them."""
    usage = completion.usage
    if usage is None:
        return TokenUsage()
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details else 0
    return TokenUsage(input_tokens=usage.prompt_tokens - cached, output_tokens=usage.completion_tokens,
                      cache_read_tokens=cached)


def _name_and_parameters(call: Any) -> tuple[str, Any]:
    if call.type != "function":
        return f"{call.type} tool", {}  # never offered, so refused as unknown
    try:
        return call.function.name, json.loads(call.function.arguments or "{}")
    except ValueError:
        return call.function.name, "arguments that are not valid JSON"


def _as_param(call: Any) -> ChatCompletionMessageToolCallUnionParam:
    if call.type == "function":
        return {"id": call.id, "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments}}
    return {"id": call.id, "type": "custom", "custom": {"name": call.custom.name, "input": call.custom.input}}


def _content(outcome: ToolOutcome) -> str:
    # Chat Completions has no is_error flag: the text has to say it.
    return f"Error: {outcome.content}" if outcome.is_error else outcome.content or "(empty result)"


def llm_error(exc: Exception, llm: LlmSection) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return policy.timeout_error(llm)
    if isinstance(exc, openai.APIConnectionError):
        return policy.connection_error()
    if isinstance(exc, openai.APIStatusError):
        return policy.status_error(exc.status_code, llm)
    return LLMError(f"the LLM call failed ({type(exc).__name__})")
