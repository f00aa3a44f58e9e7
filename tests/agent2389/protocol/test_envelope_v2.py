"""v2 envelopes (PROTOCOL.md §9): context checked when present, and a delivery identity per hop."""

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from agent2389.protocol.envelope import TaskEnvelope


def v2(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"task_id": str(uuid.uuid4()), "conversation_id": "conv-1",
                            "topic": "/control/agents/a/input", "instruction": "go", "input": "hi", "next": None,
                            "version": "2.0"}
    return {**base, **overrides}


def context(iteration: int = 0, **overrides: Any) -> dict[str, Any]:
    return {"original_query": "q", "iteration_count": iteration,
            "steps_completed": [{"agent_id": "x", "action": "go", "timestamp": "2026-01-01T00:00:00Z"}],
            **overrides}


def test_a_v2_envelope_without_context_is_a_workflows_first_envelope() -> None:
    task = TaskEnvelope.model_validate(v2())
    assert task.is_v2 and task.workflow_context() is None and task.routing_trace() == []


def test_a_v2_envelope_carries_its_context_and_trace() -> None:
    hop = {"from_agent": "x", "to_agent": "a", "reason": "r", "timestamp": "t", "step_number": 1}
    task = TaskEnvelope.model_validate(v2(context=context(1), routing_trace=[hop]))
    found = task.workflow_context()
    assert found is not None and found.iteration_count == 1 and found.steps_completed[0].agent_id == "x"
    assert task.routing_trace() == [hop]


@pytest.mark.parametrize("bad", [
    "not an object",
    {"original_query": 5, "iteration_count": 0},
    {"original_query": ["q"]},
    {"original_query": "q", "iteration_count": "3"},
    {"original_query": "q", "iteration_count": -1},
    {"original_query": "q", "iteration_count": 0, "steps_completed": "a,b"},
    {"original_query": "q", "iteration_count": 0, "steps_completed": [{"action": "no agent"}]},
])
def test_a_present_but_malformed_context_is_invalid(bad: Any) -> None:
    with pytest.raises(ValidationError, match="context"):
        TaskEnvelope.model_validate(v2(context=bad))


def test_a_context_without_original_query_or_iteration_count_is_read_as_the_reference_reads_it() -> None:
    """The reference defaults iteration_count to 0; original_query left out is filled by the routing step."""
    found = TaskEnvelope.model_validate(v2(context={"steps_completed": []})).workflow_context()
    assert found is not None and (found.original_query, found.iteration_count) == (None, 0)


def test_a_routing_trace_that_is_not_a_list_of_objects_is_invalid() -> None:
    with pytest.raises(ValidationError, match="routing_trace"):
        TaskEnvelope.model_validate(v2(routing_trace="b"))


def test_without_a_v2_version_context_is_an_unknown_field_and_ignored() -> None:
    task = TaskEnvelope.model_validate(v2(version="1.0", context="garbage"))
    assert not task.is_v2 and task.workflow_context() is None


def test_each_hop_of_a_workflow_is_a_delivery_of_its_own() -> None:
    first = v2(context=context(1))
    again = {**first, "context": context(3)}
    assert (TaskEnvelope.model_validate(first).pipeline_fingerprint()
            != TaskEnvelope.model_validate(again).pipeline_fingerprint())


def test_the_same_hop_delivered_twice_has_one_identity() -> None:
    wire = v2(context=context(2))
    same = {**wire, "context": context(2, steps_completed=[])}
    assert (TaskEnvelope.model_validate(wire).pipeline_fingerprint()
            == TaskEnvelope.model_validate(same).pipeline_fingerprint())


def test_a_v1_envelopes_identity_is_unchanged_by_v2() -> None:
    wire = v2()
    del wire["version"]
    assert TaskEnvelope.model_validate(wire).pipeline_fingerprint().startswith(wire["task_id"] + ":")
