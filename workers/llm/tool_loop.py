"""The tool-use loop of the SDK-based providers (PROTOCOL.md §5 step 8), written once.

One runner serves one agent for the life of a worker and is called from many threads at once: it holds
one adapter (:class:`workers.llm.provider.Provider`, with its thread-safe client) and the agent's tool
processes, and keeps all per-task state on the stack.

Besides ``run`` it offers what dynamic routing (PROTOCOL.md §9) needs: ``run_until`` takes extra
*terminal* tools whose call ends the loop (``handoff``), and ``forced_call`` makes one request that must
answer through a given tool (``route``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

from agent2389.config.agent import AgentConfig
from agent2389.protocol.errors import LLMError
from agent2389.state.stats import StatsRecorder
from workers.llm.base import TaskRequest
from workers.llm.budget import Budget
from workers.llm.daily_budget import DailyBudget
from workers.llm.fleet import FleetControls
from workers.llm.limiter import FleetLimiter
from workers.llm.prompt import user_turn
from workers.llm.provider import Provider, Turn
from workers.progress import NO_PROGRESS, TaskProgress
from workers.tools.base import ToolDescription
from workers.tools.executor import ToolCall, ToolExecutor

log = logging.getLogger("agent2389.llm")

# Given the fleet's response hook (429 pauses), makes the adapter.
ProviderFactory = Callable[[Callable[[httpx2.Response], None]], Provider]


@dataclass(frozen=True)
class TerminalCall:
    """The model called a terminal tool: the loop ended there, with this tool's name and parameters
    (not validated: the caller owns the tool's meaning)."""

    name: str
    parameters: Any


class ToolLoopRunner:
    def __init__(self, agent: AgentConfig, provider: ProviderFactory, stats: StatsRecorder | None = None,
                 tools: ToolExecutor | None = None, limiter: FleetLimiter | None = None,
                 daily_budget: DailyBudget | None = None) -> None:
        self._agent = agent
        self._fleet = FleetControls(agent, stats, limiter, daily_budget)
        self._provider = provider(self._fleet.on_response)
        self._stats = stats
        self._tools = tools or ToolExecutor(agent, stats)

    def verify(self) -> None:
        """Key, endpoint and tools work; costs no tokens (it lists models, it does not call one)."""
        self._provider.verify()
        self._tools.start()

    def run(self, request: TaskRequest) -> str:
        result = self.run_until(request)
        assert isinstance(result, str)  # no terminal tools were offered
        return result

    def run_until(self, request: TaskRequest, terminal: Sequence[ToolDescription] = ()) -> str | TerminalCall:
        """The loop, offering the agent's tools and ``terminal`` ones: the final text, or the first
        terminal call the model made (the other calls of that turn do not run)."""
        self._provider.open()
        self._tools.start()
        tools = [*self._tools.descriptions, *terminal]
        ends = {description["name"] for description in terminal}
        messages = self._provider.conversation(user_turn(request))
        budget = Budget(self._agent.budget)
        while True:
            budget.spend_llm_call()
            turn = self._turn(messages, tools, request.task_id, request.progress, budget.llm_calls)
            if not turn.calls:
                return final_text(turn)
            ending = next((call for call in turn.calls if call.name in ends), None)
            if ending is not None:
                return TerminalCall(ending.name, ending.parameters)
            if not budget.can_call_llm_again():
                budget.spend_llm_call()  # raises: there would be no LLM call left to read the results
            budget.spend_tool_calls(len(turn.calls))
            outcomes = self._tools.run_all([ToolCall(call.name, call.parameters) for call in turn.calls],
                                           request.task_id, request.progress)
            self._provider.add_results(messages, turn, outcomes)

    def forced_call(self, task_id: str, prompt: str, tool: ToolDescription, model: str | None = None,
                    progress: TaskProgress = NO_PROGRESS) -> Any:
        """One request that must answer by calling ``tool``: that call's parameters (not validated).
        Goes through the fleet limits, stats and progress events like every call; raises LLMError."""
        self._provider.open()
        turn = self._turn(self._provider.conversation(prompt), [tool], task_id, progress, 1, force_tool=tool["name"],
                          model=model)
        call = next((call for call in turn.calls if call.name == tool["name"]), None)
        if call is None:
            raise LLMError(f"the model did not call the {tool['name']} tool ({turn.stop})")
        return call.parameters

    def close(self) -> None:
        self._tools.close()
        self._fleet.close()
        self._provider.close()

    def _turn(self, messages: list[Any], tools: Sequence[ToolDescription], task_id: str, progress: TaskProgress,
              call: int, force_tool: str | None = None, model: str | None = None) -> Turn:
        progress.llm_request(call, model or self._agent.llm.model, len(tools))
        with self._fleet.call():
            started = time.monotonic()
            try:
                turn = self._provider.turn(messages, tools, force_tool, model)
            except Exception as exc:
                error = self._provider.error(exc)
                duration = time.monotonic() - started
                self._record_failure(task_id, duration, str(error), model)
                progress.llm_error(call, duration, str(error))
                log.warning("LLM call failed: %s", error)
                raise error from None
            duration = time.monotonic() - started
            usage = turn.usage
            self._fleet.answered(task_id, duration, usage)
        progress.llm_response(call, duration, turn.stop, len(turn.calls), usage.input_tokens, usage.output_tokens)
        log.info("LLM call: %s, %d+%d tokens (cache: %d read, %d written), %.3f s", turn.stop,
                 usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                 duration)
        if turn.problem:
            raise LLMError(turn.problem)
        return turn

    def _record_failure(self, task_id: str, duration_s: float, error: str, model: str | None) -> None:
        if self._stats is not None:
            self._stats.llm_call(self._agent.id, model or self._agent.llm.model, duration_s, 0, 0, ok=False,
                                 task_id=task_id, error=error)


def final_text(turn: Turn) -> str:
    if turn.declined:
        raise LLMError(f"the model declined to answer this task ({turn.declined})")
    text = turn.text.strip()
    if not text:
        raise LLMError(f"the model ended its turn without any text ({turn.stop})")
    return text
