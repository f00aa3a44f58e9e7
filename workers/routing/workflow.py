"""The messages a routing decision turns into (PROTOCOL.md §9): the forwarded v2 envelope and the answer.

Pure functions: the envelope in, the wire document out.
"""

from __future__ import annotations

import json
from typing import Any

from agent2389.protocol.envelope import TaskEnvelope, WorkflowStep, utc_timestamp
from agent2389.protocol.topics import input_topic

MAX_STEPS_KEPT = 100
V2 = "2.0"


def original_query(envelope: TaskEnvelope) -> str:
    """The workflow's question: kept from the context, or on the first hop (or from a sender whose context
    left it out) this envelope's instruction and input."""
    context = envelope.workflow_context()
    if context is not None and context.original_query is not None:
        return context.original_query
    body = envelope.input if isinstance(envelope.input, str) else json.dumps(envelope.input, sort_keys=True)
    return f"{envelope.instruction}\n\n{body}" if envelope.instruction else body


def trace_entry(from_agent: str, to_agent: str | None, reason: str, step_number: int) -> dict[str, Any]:
    """One hop of ``routing_trace``; ``to_agent`` null marks the completion, the trace's last entry."""
    return {"from_agent": from_agent, "to_agent": to_agent, "reason": reason, "timestamp": utc_timestamp(),
            "step_number": step_number}


def forward(envelope: TaskEnvelope, from_agent: str, to_agent: str, instruction: str | None, work: Any,
            reason: str) -> dict[str, Any]:
    """The envelope for ``to_agent``: same task and conversation, the context and trace one hop longer."""
    context = envelope.workflow_context()
    steps = list(context.steps_completed) if context else []
    # Never null: the reference reads `action` as a string and drops a context it cannot read.
    steps.append(WorkflowStep(agent_id=from_agent, action=envelope.instruction or ""))
    iteration = (context.iteration_count if context else 0) + 1
    return {
        "task_id": envelope.task_id,
        "conversation_id": envelope.conversation_id,
        "topic": input_topic(to_agent),
        "instruction": instruction,
        "input": work,
        "next": None,
        "version": V2,
        "context": {"original_query": original_query(envelope), "iteration_count": iteration,
                    "steps_completed": [s.model_dump(mode="json") for s in steps[-MAX_STEPS_KEPT:]]},
        "routing_trace": [*envelope.routing_trace(), trace_entry(from_agent, to_agent, reason, iteration)],
    }


def completion(envelope: TaskEnvelope, from_agent: str, output: str, reason: str) -> dict[str, Any]:
    """The workflow's answer, with the reason it ended as the trace's last entry."""
    context = envelope.workflow_context()
    step = (context.iteration_count if context else 0) + 1
    return {"task_id": envelope.task_id, "response": output,
            "routing_trace": [*envelope.routing_trace(), trace_entry(from_agent, None, reason, step)]}
