"""How the ``llm`` and ``agent`` strategies use the tool loop (``route`` forced, ``handoff`` terminal), with
a runner double in place of workers.llm.tool_loop.ToolLoopRunner; tests/e2e runs the real loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent2389.protocol.errors import LLMError
from tests.workers.routing.conftest import Bench, agent, v2_task
from workers.llm import TaskRequest
from workers.tools.base import ToolDescription


@dataclass(frozen=True)
class Terminal:
    name: str
    parameters: Any


@dataclass
class LoopDouble:
    """Answers ``run_until`` and ``forced_call`` from a script and records what it was offered."""

    answer: str | Terminal = "the work"
    route: Any = None
    offered: list[list[str]] = field(default_factory=list)
    forced: list[tuple[str, str | None, list[str]]] = field(default_factory=list)

    def verify(self) -> None: ...

    def close(self) -> None: ...

    def run(self, request: TaskRequest) -> str:
        result = self.run_until(request)
        assert isinstance(result, str)
        return result

    def run_until(self, request: TaskRequest, terminal: Sequence[ToolDescription] = ()) -> str | Terminal:
        self.offered.append([t["name"] for t in terminal])
        return self.answer if terminal or isinstance(self.answer, str) else "the work"

    def forced_call(self, task_id: str, prompt: str, tool: ToolDescription, model: str | None = None) -> Any:
        self.forced.append((tool["name"], model, tool["parameters"]["properties"]["next_agent"]["enum"]))
        if isinstance(self.route, Exception):
            raise self.route
        return self.route


def handoff(agent_id: str, **extra: Any) -> Terminal:
    return Terminal("handoff", {"agent_id": agent_id, "instruction": "polish", "input": "draft", "reason": "why",
                                **extra})


def test_the_agent_strategy_offers_handoff_and_forwards_its_input(bench: Bench) -> None:
    loop = LoopDouble(answer=handoff("c"))
    [(topic, sent)] = bench.run(agent(provider="anthropic", strategy="agent"), v2_task(), loop)
    assert loop.offered == [["handoff"]]
    assert topic == "/control/agents/c/input" and sent["input"] == "draft" and sent["instruction"] == "polish"
    assert sent["routing_trace"][-1]["reason"] == "why"


def test_an_agent_that_answers_without_handing_off_completes(bench: Bench) -> None:
    [(topic, sent)] = bench.run(agent(provider="anthropic", strategy="agent"), v2_task(), LoopDouble())
    assert topic == "/conversations/c/a" and sent["response"] == "the work"
    assert "without handing off" in sent["routing_trace"][-1]["reason"]


def test_a_handoff_to_an_agent_not_allowed_completes_with_the_handed_work(bench: Bench) -> None:
    config = agent(provider="anthropic", strategy="agent", allow=["b"])
    [(topic, sent)] = bench.run(config, v2_task(), LoopDouble(answer=handoff("c")))
    assert topic == "/conversations/c/a" and sent["response"] == "draft"


def test_at_the_cap_no_handoff_is_offered(bench: Bench) -> None:
    loop = LoopDouble(answer=handoff("c"))
    wire = v2_task(context={"original_query": "q", "iteration_count": 2})
    [(topic, _)] = bench.run(agent(provider="anthropic", strategy="agent", max_iterations=2), wire, loop)
    assert topic == "/conversations/c/a" and loop.offered == [[]]


def test_the_llm_strategy_forces_route_with_the_routing_model_and_forwards(bench: Bench) -> None:
    loop = LoopDouble(route={"workflow_complete": False, "next_agent": "b", "next_instruction": "write",
                             "reason": "b writes"})
    config = agent(provider="anthropic", strategy="llm", llm={"model": "claude-haiku-4-5"})
    [(topic, sent)] = bench.run(config, v2_task(), loop)
    assert loop.forced == [("route", "claude-haiku-4-5", ["b", "c"])]
    assert topic == "/control/agents/b/input" and sent["input"] == "the work" and sent["instruction"] == "write"


def test_a_failed_routing_call_completes_with_the_work(bench: Bench) -> None:
    loop = LoopDouble(route=LLMError("the model did not call the route tool"))
    [(topic, sent)] = bench.run(agent(provider="anthropic", strategy="llm"), v2_task(), loop)
    assert topic == "/conversations/c/a" and sent["response"] == "the work"
    assert "routing call failed" in sent["routing_trace"][-1]["reason"]
    assert bench.stats("a")["routing:llm:failed"] == "1"


def test_with_nobody_to_route_to_the_llm_strategy_completes_without_a_call(bench: Bench) -> None:
    bench.directory.agents = []
    loop = LoopDouble()
    [(topic, _)] = bench.run(agent(provider="anthropic", strategy="llm"), v2_task(), loop)
    assert topic == "/conversations/c/a" and loop.forced == []


def test_a_handoff_whose_input_is_not_text_forwards_it_as_json_text(bench: Bench) -> None:
    loop = LoopDouble(answer=handoff("b", input={"draft": [1, 2]}))
    [(topic, sent)] = bench.run(agent(provider="anthropic", strategy="agent"), v2_task(), loop)
    assert topic == "/control/agents/b/input" and sent["input"] == '{"draft": [1, 2]}'


def test_a_handoff_naming_no_agent_completes_as_a_routing_failure(bench: Bench) -> None:
    loop = LoopDouble(answer=Terminal("handoff", {"input": "draft"}))
    [(topic, sent)] = bench.run(agent(provider="anthropic", strategy="agent"), v2_task(), loop)
    assert topic == "/conversations/c/a" and sent["response"] == "draft"
    assert "names no agent_id" in sent["routing_trace"][-1]["reason"]
