"""The ``anthropic`` provider: Claude through the official SDK, with the agent's tools in a tool-use loop.

One runner serves one agent for the life of a worker and is called from many threads at once: it holds
one thread-safe SDK client and the agent's tool processes, and keeps all per-task state on the stack.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import anthropic
from anthropic.types import Message, MessageParam, ToolParam, ToolResultBlockParam

from agent2389.config.agent import AgentConfig
from agent2389.protocol.errors import LLMError
from agent2389.state.stats import StatsRecorder
from workers.llm.anthropic_client import llm_error, make_client
from workers.llm.base import TaskRequest
from workers.llm.budget import Budget
from workers.llm.caching import system_param, token_usage, tools_param
from workers.llm.daily_budget import DailyBudget
from workers.llm.fleet import FleetControls
from workers.llm.limiter import FleetLimiter
from workers.llm.prompt import user_turn
from workers.tools.executor import ToolCall, ToolExecutor, ToolOutcome

log = logging.getLogger("agent2389.llm")
MODELS_PAGE_SIZE = 1000


class AnthropicRunner:
    def __init__(self, agent: AgentConfig, stats: StatsRecorder | None = None,
                 tools: ToolExecutor | None = None, limiter: FleetLimiter | None = None,
                 daily_budget: DailyBudget | None = None) -> None:
        self._agent = agent
        self._fleet = FleetControls(agent, stats, limiter, daily_budget)
        self._llm = agent.llm
        self._stats = stats
        self._tools = tools or ToolExecutor(agent, stats)
        self._client: anthropic.Anthropic | None = None
        self._client_lock = threading.Lock()

    def verify(self) -> None:
        """Key, endpoint and tools work; costs no tokens (it lists models, it does not call one)."""
        client = self._get_client()
        try:
            page = client.models.list(limit=MODELS_PAGE_SIZE)
        except Exception as exc:
            raise llm_error(exc, self._llm) from None
        if "temperature" in self._llm.model_fields_set:
            log.warning("[llm] temperature is ignored: the Anthropic API version this SDK speaks rejects it")
        model = self._llm.model
        if not any(info.id == model or info.id.startswith(f"{model}-") for info in page.data):
            log.warning("model %s is not in the provider's model list; it may be an alias", model)
        self._tools.start()

    def run(self, request: TaskRequest) -> str:
        client = self._get_client()
        self._tools.start()
        tools = tools_param(self._tools.descriptions, self._llm)
        messages: list[MessageParam] = [{"role": "user", "content": user_turn(request)}]
        budget = Budget(self._agent.budget)
        while True:
            budget.spend_llm_call()
            response = self._create(client, messages, tools, request.task_id)
            calls = [block for block in response.content if block.type == "tool_use"]
            if response.stop_reason != "tool_use" or not calls:
                return final_text(response)
            if not budget.can_call_llm_again():
                budget.spend_llm_call()  # raises: there would be no LLM call left to read the results
            budget.spend_tool_calls(len(calls))
            outcomes = self._tools.run_all([ToolCall(call.name, call.input) for call in calls], request.task_id)
            messages.append({"role": "assistant", "content": [_as_param(block) for block in response.content]})
            messages.append({"role": "user", "content": [
                _tool_result(call.id, outcome) for call, outcome in zip(calls, outcomes, strict=True)
            ]})

    def close(self) -> None:
        self._tools.close()
        self._fleet.close()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _get_client(self) -> anthropic.Anthropic:
        with self._client_lock:
            if self._client is None:
                self._client = make_client(self._llm, [self._fleet.on_response])
            return self._client

    def _create(self, client: anthropic.Anthropic, messages: list[MessageParam], tools: list[ToolParam],
                task_id: str) -> Message:
        with self._fleet.call():
            return self._call(client, messages, tools, task_id)

    def _call(self, client: anthropic.Anthropic, messages: list[MessageParam], tools: list[ToolParam],
              task_id: str) -> Message:
        started = time.monotonic()
        try:
            response = client.messages.create(
                model=self._llm.model,
                max_tokens=self._llm.max_tokens,
                messages=messages,
                system=system_param(self._llm) or anthropic.omit,
                tools=tools or anthropic.omit,
            )
        except Exception as exc:
            error = llm_error(exc, self._llm)
            self._record_failure(task_id, time.monotonic() - started, str(error))
            log.warning("LLM call failed: %s", error)
            raise error from None
        duration = time.monotonic() - started
        usage = token_usage(response.usage)
        self._fleet.answered(task_id, duration, usage)
        log.info("LLM call: %s, %d+%d tokens (cache: %d read, %d written), %.3f s", response.stop_reason,
                 usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                 duration)
        return response

    def _record_failure(self, task_id: str, duration_s: float, error: str) -> None:
        if self._stats is not None:
            self._stats.llm_call(self._agent.id, self._llm.model, duration_s, 0, 0, ok=False, task_id=task_id,
                                 error=error)


def final_text(response: Message) -> str:
    text = "".join(block.text for block in response.content if block.type == "text").strip()
    if response.stop_reason == "refusal":
        raise LLMError("the model declined to answer this task (stop reason: refusal)")
    if not text:
        reason = response.stop_reason or "unknown"
        raise LLMError(f"the model ended its turn without any text (stop reason: {reason})")
    return text


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
