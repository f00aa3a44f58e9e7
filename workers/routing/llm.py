"""The ``llm`` strategy: one extra LLM call, forced to answer through the ``route`` tool (PROTOCOL.md §9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from agent2389.protocol.errors import LLMError
from workers.llm.base import TaskRequest
from workers.routing.decision import Decision, RoutingError, Situation
from workers.routing.tools import ROUTING_SYSTEM_PROMPT, parse_route, route_tool, routing_question
from workers.tools.base import ToolDescription


@runtime_checkable
class LoopRunner(Protocol):
    """A runner with the tool loop's routing calls (workers.llm.tool_loop.ToolLoopRunner)."""

    def run(self, request: TaskRequest) -> str: ...

    def run_until(self, request: TaskRequest, terminal: Sequence[ToolDescription] = ()) -> Any: ...

    def forced_call(self, task_id: str, prompt: str, tool: ToolDescription, model: str | None = None) -> Any: ...


class LlmRouting:
    name = "llm"

    def __init__(self, runner: LoopRunner, model: str | None) -> None:
        self._runner = runner
        self._model = model

    def decide(self, situation: Situation) -> Decision:
        if not situation.candidates:
            # No call to pay for: there is nobody to forward to.
            return Decision.finish("no agent this one may route to is available")
        prompt = f"{ROUTING_SYSTEM_PROMPT}\n\n{routing_question(situation)}"
        try:
            arguments = self._runner.forced_call(situation.envelope.task_id, prompt,
                                                 route_tool(situation.candidates), model=self._model)
        except LLMError as exc:
            raise RoutingError(f"the routing call failed: {exc}") from None
        return parse_route(arguments)
