"""The ``openai`` provider: the OpenAI Chat Completions API, or any compatible server (vLLM, Ollama, ...)
through ``base_url``, with the agent's tools in the same tool-use loop as the anthropic provider.

The retry and time-out policy is :mod:`workers.llm.policy`, carried out by the official SDK.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallUnionParam,
    ChatCompletionToolParam,
)

from agent2389.config.agent import AgentConfig, LlmSection
from agent2389.protocol.errors import LLMError
from agent2389.state.stats import StatsRecorder
from agent2389.state.usage import TokenUsage
from workers.llm import policy
from workers.llm.base import TaskRequest
from workers.llm.budget import Budget
from workers.llm.daily_budget import DailyBudget
from workers.llm.fleet import FleetControls
from workers.llm.limiter import FleetLimiter
from workers.llm.prompt import user_turn
from workers.tools.executor import ToolCall, ToolExecutor, ToolOutcome

log = logging.getLogger("agent2389.llm")


class OpenAIRunner:
    def __init__(self, agent: AgentConfig, stats: StatsRecorder | None = None,
                 tools: ToolExecutor | None = None, limiter: FleetLimiter | None = None,
                 daily_budget: DailyBudget | None = None) -> None:
        self._agent = agent
        self._fleet = FleetControls(agent, stats, limiter, daily_budget)
        self._llm = agent.llm
        self._stats = stats
        self._tools = tools or ToolExecutor(agent, stats)
        self._client: openai.OpenAI | None = None
        self._client_lock = threading.Lock()

    def verify(self) -> None:
        """Key, endpoint and tools work; costs no tokens (it lists models)."""
        try:
            self._get_client().models.list()
        except Exception as exc:
            raise llm_error(exc, self._llm) from None
        self._tools.start()

    def run(self, request: TaskRequest) -> str:
        client = self._get_client()
        self._tools.start()
        tools: list[ChatCompletionToolParam] = [
            {"type": "function", "function": {"name": d["name"], "description": d["description"],
                                              "parameters": d["parameters"]}}
            for d in self._tools.descriptions
        ]
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": user_turn(request)}]
        if self._llm.system_prompt:
            messages.insert(0, {"role": "system", "content": self._llm.system_prompt})
        budget = Budget(self._agent.budget)
        while True:
            budget.spend_llm_call()
            message = self._create(client, messages, tools, request.task_id).choices[0]
            calls = message.message.tool_calls or []
            if not calls:
                return _final_text(message.message.content, message.finish_reason)
            if not budget.can_call_llm_again():
                budget.spend_llm_call()  # raises: there would be no LLM call left to read the results
            budget.spend_tool_calls(len(calls))
            outcomes = self._tools.run_all([_tool_call(call) for call in calls], request.task_id)
            messages.append({"role": "assistant", "content": message.message.content,
                             "tool_calls": [_as_param(call) for call in calls]})
            messages.extend({"role": "tool", "tool_call_id": call.id, "content": _content(outcome)}
                            for call, outcome in zip(calls, outcomes, strict=True))

    def close(self) -> None:
        self._tools.close()
        self._fleet.close()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _get_client(self) -> openai.OpenAI:
        with self._client_lock:
            if self._client is None:
                http_client = openai.DefaultHttpxClient(event_hooks={"response": [policy.refuse_long_retry_after,
                                                                                  self._fleet.on_response]},
                                                        limits=policy.CONNECTION_LIMITS)
                self._client = openai.OpenAI(api_key=policy.api_key(self._llm), base_url=self._llm.base_url,
                                             timeout=policy.request_timeout(self._llm),
                                             max_retries=self._llm.max_retries, http_client=http_client)
            return self._client

    def _create(self, client: openai.OpenAI, messages: list[ChatCompletionMessageParam],
                tools: list[ChatCompletionToolParam], task_id: str) -> ChatCompletion:
        with self._fleet.call():
            return self._call(client, messages, tools, task_id)

    def _call(self, client: openai.OpenAI, messages: list[ChatCompletionMessageParam],
              tools: list[ChatCompletionToolParam], task_id: str) -> ChatCompletion:
        started = time.monotonic()
        # Reasoning models reject a temperature: send one only when the agent file sets it.
        temperature = self._llm.temperature if "temperature" in self._llm.model_fields_set else openai.omit
        try:
            completion = client.chat.completions.create(
                model=self._llm.model, messages=messages, max_completion_tokens=self._llm.max_tokens,
                temperature=temperature, tools=tools or openai.omit,
            )
        except Exception as exc:
            error = llm_error(exc, self._llm)
            self._record_failure(task_id, time.monotonic() - started, str(error))
            log.warning("LLM call failed: %s", error)
            raise error from None
        usage = _token_usage(completion)
        self._fleet.answered(task_id, time.monotonic() - started, usage)
        if not completion.choices:
            raise LLMError("the LLM provider answered without a choice")
        return completion

    def _record_failure(self, task_id: str, duration_s: float, error: str) -> None:
        if self._stats is not None:
            self._stats.llm_call(self._agent.id, self._llm.model, duration_s, 0, 0, ok=False, task_id=task_id,
                                 error=error)


def _token_usage(completion: ChatCompletion) -> TokenUsage:
    """OpenAI counts cached tokens inside ``prompt_tokens``; here they are apart, as Anthropic reports them."""
    usage = completion.usage
    if usage is None:
        return TokenUsage()
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details else 0
    return TokenUsage(input_tokens=usage.prompt_tokens - cached, output_tokens=usage.completion_tokens,
                      cache_read_tokens=cached)


def _tool_call(call: Any) -> ToolCall:
    if call.type != "function":
        return ToolCall(f"{call.type} tool", {})  # never offered, so refused as unknown
    try:
        return ToolCall(call.function.name, json.loads(call.function.arguments or "{}"))
    except ValueError:
        return ToolCall(call.function.name, "arguments that are not valid JSON")


def _as_param(call: Any) -> ChatCompletionMessageToolCallUnionParam:
    if call.type == "function":
        return {"id": call.id, "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments}}
    return {"id": call.id, "type": "custom", "custom": {"name": call.custom.name, "input": call.custom.input}}


def _content(outcome: ToolOutcome) -> str:
    # Chat Completions has no is_error flag: the text has to say it.
    return f"Error: {outcome.content}" if outcome.is_error else outcome.content or "(empty result)"


def _final_text(content: str | None, finish_reason: str) -> str:
    if finish_reason == "content_filter":
        raise LLMError("the model declined to answer this task (content filter)")
    text = (content or "").strip()
    if not text:
        raise LLMError(f"the model ended its turn without any text (finish reason: {finish_reason})")
    return text


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
