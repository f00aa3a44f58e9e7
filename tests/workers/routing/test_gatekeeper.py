"""The gatekeeper strategy against a scripted HTTP gatekeeper on 127.0.0.1 (PROTOCOL.md §9)."""

from __future__ import annotations

from typing import Any

import pytest

from fakes.gatekeeper import HANG, complete, forward_to, gatekeeper
from tests.workers.routing.conftest import Bench, Listed, agent, v2_task


def keeper_agent(url: str, **routing: Any) -> Any:
    return agent(strategy="gatekeeper", gatekeeper={"url": url, "timeout_ms": 300, "retry_attempts": 2}, **routing)


def test_the_gatekeeper_is_asked_with_the_workflow_and_the_candidates(bench: Bench) -> None:
    bench.directory.agents = [Listed("b", "writes", ("writing",), 0.25)]
    wire = v2_task(context={"original_query": "q", "iteration_count": 1,
                            "steps_completed": [{"agent_id": "x", "action": "go", "timestamp": "t"}]})
    with gatekeeper(forward_to("b")) as (keeper, url):
        bench.run(keeper_agent(url), wire)
    [asked] = keeper.requests
    assert asked == {"task_id": wire["task_id"], "conversation_id": "c", "original_query": "q",
                     "workflow_history": [{"agent_id": "x", "action": "go", "timestamp": "t"}],
                     "current_output": "say: hi", "iteration_count": 1,
                     "available_agents": [{"agent_id": "b", "description": "writes", "capabilities": ["writing"],
                                           "load": 0.25}]}


def test_the_gatekeeper_forwards_with_its_instruction_and_reasoning(bench: Bench) -> None:
    with gatekeeper(forward_to("c", "review it", "c reviews")) as (_, url):
        [(topic, sent)] = bench.run(keeper_agent(url), v2_task())
    assert topic == "/control/agents/c/input" and sent["instruction"] == "review it"
    assert sent["routing_trace"][-1]["reason"] == "c reviews"


def test_the_gatekeeper_completes_the_workflow(bench: Bench) -> None:
    with gatekeeper(complete("good enough")) as (_, url):
        [(topic, sent)] = bench.run(keeper_agent(url), v2_task())
    assert topic == "/conversations/c/a" and sent["routing_trace"][-1]["reason"] == "good enough"


def test_a_gatekeeper_that_500s_then_answers_is_retried(bench: Bench) -> None:
    with gatekeeper((500, {}), (502, b"down"), forward_to("b")) as (keeper, url):
        [(topic, _)] = bench.run(keeper_agent(url), v2_task())
    assert topic == "/control/agents/b/input" and len(keeper.requests) == 3


def test_a_gatekeeper_that_keeps_failing_completes_the_workflow_after_its_retries(bench: Bench) -> None:
    with gatekeeper((503, {})) as (keeper, url):
        [(topic, sent)] = bench.run(keeper_agent(url), v2_task())
    assert topic == "/conversations/c/a" and len(keeper.requests) == 3
    assert sent["response"] == "say: hi" and "HTTP 503" in sent["routing_trace"][-1]["reason"]
    assert bench.stats("a")["routing:gatekeeper:failed"] == "1"


def test_a_gatekeeper_that_times_out_is_a_routing_failure_and_not_retried(bench: Bench) -> None:
    with gatekeeper(HANG) as (keeper, url):
        [(topic, sent)] = bench.run(keeper_agent(url), v2_task())
    assert topic == "/conversations/c/a" and len(keeper.requests) == 1
    assert "did not answer within 300 ms" in sent["routing_trace"][-1]["reason"]


def test_an_unreachable_gatekeeper_is_a_routing_failure(bench: Bench) -> None:
    with gatekeeper(complete()) as (_, url):
        gone = url
    [(topic, sent)] = bench.run(keeper_agent(gone), v2_task())
    assert topic == "/conversations/c/a" and "could not be reached" in sent["routing_trace"][-1]["reason"]


@pytest.mark.parametrize(("reply", "why"), [
    ((200, b"<html>yes</html>"), "not JSON"),
    ((200, ["b"]), "workflow_complete"),
    ((200, {"workflow_complete": "no"}), "workflow_complete"),
    ((200, {"workflow_complete": False}), "without a next_agent"),
    ((200, {"workflow_complete": False, "next_agent": "b", "next_instruction": 7}), "next_instruction"),
    ((404, {}), "HTTP 404"),
])
def test_a_gatekeeper_answering_garbage_completes_the_workflow(bench: Bench, reply: Any, why: str) -> None:
    with gatekeeper(reply) as (keeper, url):
        [(topic, sent)] = bench.run(keeper_agent(url), v2_task())
    assert topic == "/conversations/c/a" and len(keeper.requests) == 1
    assert why in sent["routing_trace"][-1]["reason"] and sent["response"] == "say: hi"


def test_a_choice_that_is_not_routable_completes_the_workflow(bench: Bench) -> None:
    with gatekeeper(forward_to("ghost")) as (_, url):
        [(topic, sent)] = bench.run(keeper_agent(url), v2_task())
    assert topic == "/conversations/c/a" and "'ghost', which is not routable" in sent["routing_trace"][-1]["reason"]
    assert bench.stats("a")["routing:gatekeeper:unroutable"] == "1"


def test_a_choice_that_is_not_allowed_completes_the_workflow(bench: Bench) -> None:
    with gatekeeper(forward_to("c")) as (_, url):
        [(topic, sent)] = bench.run(keeper_agent(url, allow=["b"]), v2_task())
    assert topic == "/conversations/c/a" and "may not route to" in sent["routing_trace"][-1]["reason"]
    assert bench.stats("a")["routing:gatekeeper:not_allowed"] == "1"


def test_a_gatekeeper_may_send_the_workflow_back_to_an_agent_that_worked_on_it(bench: Bench) -> None:
    bench.directory.agents = [Listed("a"), Listed("b")]
    with gatekeeper(forward_to("a")) as (_, url):
        first = v2_task(agent_id="b", context={"original_query": "q", "iteration_count": 1,
                                               "steps_completed": [{"agent_id": "a", "timestamp": "t"}]})
        [(topic, sent)] = bench.run(keeper_agent(url).model_copy(update={"agent": agent("b").agent}), first)
    assert topic == "/control/agents/a/input" and sent["context"]["iteration_count"] == 2
