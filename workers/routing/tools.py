"""The two tools of routing (PROTOCOL.md §9): ``route``, forced in the ``llm`` strategy's extra call, and
``handoff``, offered in the ``agent`` strategy's own loop; with what the model is told and how its call
becomes a Decision.
"""

from __future__ import annotations

import json
from typing import Any

from workers.routing.decision import Candidate, Decision, RoutingError, Situation, describe_candidate
from workers.tools.base import ToolDescription

ROUTE, HANDOFF = "route", "handoff"
ROUTING_SYSTEM_PROMPT = (
    "You route a multi-agent workflow. Given the original query, the steps completed so far, the latest "
    "agent's output and the agents available, decide whether the workflow is complete or which one agent "
    "should work on it next, with what instruction. Answer only by calling the route tool."
)


def route_tool(candidates: list[Candidate]) -> ToolDescription:
    return {"name": ROUTE, "description": "Complete the workflow, or forward it to one of the available agents.",
            "parameters": {"type": "object", "properties": {
                "workflow_complete": {"type": "boolean",
                                      "description": "true when the output answers the original query"},
                "next_agent": {"type": "string", "enum": [c.agent_id for c in candidates],
                               "description": "the agent to forward to, when not complete"},
                "next_instruction": {"type": "string", "description": "what that agent should do"},
                "reason": {"type": "string", "description": "why, in one sentence"},
            }, "required": ["workflow_complete", "reason"]}}


def routing_question(situation: Situation) -> str:
    """The routing call's one user turn."""
    facts = {"original_query": situation.original_query,
             "steps_completed": [s.model_dump(mode="json") for s in situation.steps_completed],
             "current_agent": situation.agent.id,
             "available_agents": [describe_candidate(c) for c in situation.candidates]}
    return (f"<workflow>\n{json.dumps(facts, indent=2, ensure_ascii=False)}\n</workflow>\n\n"
            f"<output>\n{situation.output}\n</output>")


def parse_route(arguments: Any) -> Decision:
    """The ``route`` call's arguments as a Decision; RoutingError when they are not what was asked."""
    if not isinstance(arguments, dict) or not isinstance(arguments.get("workflow_complete"), bool):
        raise RoutingError("the routing model's route call has no workflow_complete true or false")
    reason = arguments.get("reason")
    reason = reason if isinstance(reason, str) and reason else "the routing model decided"
    if arguments["workflow_complete"]:
        return Decision.finish(reason)
    next_agent, instruction = arguments.get("next_agent"), arguments.get("next_instruction")
    if not isinstance(next_agent, str) or not next_agent:
        raise RoutingError("the routing model forwards without a next_agent")
    return Decision(complete=False, reason=reason, next_agent=next_agent,
                    instruction=instruction if isinstance(instruction, str) else None)


def handoff_tool(candidates: list[Candidate]) -> ToolDescription:
    listing = "; ".join(f"{c.agent_id}: {c.description or 'no description'}"
                        + (f" (capabilities: {', '.join(c.capabilities)})" if c.capabilities else "")
                        for c in candidates)
    return {"name": HANDOFF,
            "description": ("Hand the work over to another agent instead of answering; calling it ends your turn. "
                            f"Agents: {listing}"),
            "parameters": {"type": "object", "properties": {
                "agent_id": {"type": "string", "enum": [c.agent_id for c in candidates]},
                "instruction": {"type": "string", "description": "what that agent should do"},
                "input": {"type": "string", "description": "the work to hand over"},
                "reason": {"type": "string", "description": "why that agent, in one sentence"},
            }, "required": ["agent_id", "instruction", "input", "reason"]}}


def parse_handoff(arguments: Any) -> Decision:
    """A ``handoff`` call's parameters as a Decision; RoutingError when they name no agent."""
    if not isinstance(arguments, dict) or not isinstance(arguments.get("agent_id"), str):
        raise RoutingError("the agent's handoff call names no agent_id")
    reason = arguments.get("reason")
    return Decision(complete=False, next_agent=str(arguments.get("agent_id", "")),
                    instruction=arguments.get("instruction") if isinstance(arguments.get("instruction"), str) else None,
                    input=arguments.get("input"),
                    reason=reason if isinstance(reason, str) and reason else "the agent handed off")
