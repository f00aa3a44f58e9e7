"""The route and handoff tools: offered with the candidates, their calls read into decisions."""

import pytest

from tests.workers.routing.conftest import Listed
from workers.routing import RoutingError
from workers.routing.tools import handoff_tool, parse_handoff, parse_route, route_tool

AGENTS = [Listed("writer", "writes", ("prose",)), Listed("reviewer")]


def test_route_offers_exactly_the_candidates() -> None:
    tool = route_tool(AGENTS)
    assert tool["name"] == "route"
    assert tool["parameters"]["properties"]["next_agent"]["enum"] == ["writer", "reviewer"]
    assert tool["parameters"]["required"] == ["workflow_complete", "reason"]


def test_a_route_call_forwarding_or_completing_is_a_decision() -> None:
    forward = parse_route({"workflow_complete": False, "next_agent": "writer", "next_instruction": "draft",
                           "reason": "needs prose"})
    assert (forward.complete, forward.next_agent, forward.instruction, forward.reason) == (
        False, "writer", "draft", "needs prose")
    assert parse_route({"workflow_complete": True, "reason": "answered"}).complete


@pytest.mark.parametrize("arguments", [None, {}, {"workflow_complete": "yes"}, {"workflow_complete": False}])
def test_a_route_call_without_a_usable_decision_is_a_routing_failure(arguments: object) -> None:
    with pytest.raises(RoutingError):
        parse_route(arguments)


def test_handoff_lists_the_candidates_and_carries_its_input() -> None:
    tool = handoff_tool(AGENTS)
    assert tool["parameters"]["properties"]["agent_id"]["enum"] == ["writer", "reviewer"]
    assert "writer: writes (capabilities: prose)" in tool["description"]
    decision = parse_handoff({"agent_id": "writer", "instruction": "draft", "input": "notes", "reason": "prose"})
    assert (decision.next_agent, decision.instruction, decision.input, decision.complete) == (
        "writer", "draft", "notes", False)
