"""Routing on the ``echo`` provider: a fixed rule, so examples and load tests run without an LLM.

The rule (docs/routing.md): forward to the first candidate that has not worked on this workflow yet
(in the order of ``[routing] allow``, else by agent id), with the instruction this agent was given;
complete when every candidate has. Strategies ``llm`` and ``agent`` both follow it on ``echo``.
"""

from __future__ import annotations

from workers.routing.decision import Decision, Situation


class EchoRouting:
    def __init__(self, name: str) -> None:
        self.name = name

    def decide(self, situation: Situation) -> Decision:
        worked = {step.agent_id for step in situation.steps_completed} | {situation.agent.id}
        order = situation.agent.routing.allow if situation.agent.routing and situation.agent.routing.allow else None
        candidates = sorted(situation.candidates, key=lambda c: (order.index(c.agent_id) if order else 0, c.agent_id))
        for candidate in candidates:
            if candidate.agent_id not in worked:
                return Decision(complete=False, next_agent=candidate.agent_id,
                                instruction=situation.envelope.instruction,
                                reason=f"echo rule: {candidate.agent_id} has not worked on this workflow yet")
        return Decision.finish("echo rule: every agent this one may route to has worked on this workflow")
