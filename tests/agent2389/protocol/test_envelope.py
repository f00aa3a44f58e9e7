import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from agent2389.protocol.envelope import AgentStatus, TaskEnvelope, TaskError, utc_timestamp
from agent2389.protocol.errors import ErrorCode


def envelope(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task_id": str(uuid.uuid4()),
        "conversation_id": "conv-1",
        "topic": "/control/agents/a/input",
        "instruction": "summarize",
        "input": {"text": "hi"},
        "next": None,
    }
    base.update(overrides)
    return base


def chain(depth: int) -> dict[str, Any] | None:
    nxt: dict[str, Any] | None = None
    for i in range(depth - 1):
        nxt = {"topic": f"/control/agents/n{i}/input", "instruction": None, "input": None, "next": nxt}
    return nxt


def test_a_v1_envelope_parses_with_instruction_and_next_absent() -> None:
    data = envelope()
    del data["instruction"], data["next"]
    task = TaskEnvelope.model_validate(data)
    assert task.instruction is None and task.next is None and task.depth == 1


def test_input_may_be_a_string() -> None:
    assert TaskEnvelope.model_validate(envelope(input="text")).input == "text"


@pytest.mark.parametrize("missing", ["task_id", "conversation_id", "topic", "input"])
def test_a_missing_required_field_is_rejected(missing: str) -> None:
    data = envelope()
    del data[missing]
    with pytest.raises(ValidationError):
        TaskEnvelope.model_validate(data)


@pytest.mark.parametrize("bad", [{"task_id": "not-a-uuid"}, {"conversation_id": "a/b"}, {"input": 5},
                                 {"next": {"instruction": "x"}}, {"next": 3}, {"next": {"topic": "/a/+"}}])
def test_malformed_fields_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TaskEnvelope.model_validate(envelope(**bad))


@pytest.mark.parametrize("depth", [1, 2, 16, 17, 500])
def test_depth_is_one_plus_the_number_of_nested_next_objects(depth: int) -> None:
    assert TaskEnvelope.model_validate(envelope(next=chain(depth))).depth == depth


def test_v2_fields_and_unknown_fields_are_carried_to_the_next_agent() -> None:
    data = envelope(version="2.0", context={"original_query": "q", "iteration_count": 1}, routing_trace=[],
                    next=chain(2))
    forwarded = TaskEnvelope.model_validate(data).forwarded("final text").to_wire()
    assert forwarded["version"] == "2.0" and forwarded["context"] == data["context"]
    assert forwarded["input"] == "final text"
    assert forwarded["topic"] == "/control/agents/n0/input"
    assert forwarded["task_id"] == data["task_id"] and forwarded["conversation_id"] == "conv-1"
    assert forwarded["next"] is None


def test_the_same_task_with_another_remaining_pipeline_is_another_visit() -> None:
    task_id = str(uuid.uuid4())
    first = TaskEnvelope.model_validate(envelope(task_id=task_id, next=chain(3)))
    again = TaskEnvelope.model_validate(json.loads(json.dumps(envelope(task_id=task_id, next=chain(3)))))
    later = TaskEnvelope.model_validate(envelope(task_id=task_id, next=chain(2)))
    assert first.pipeline_fingerprint() == again.pipeline_fingerprint()
    assert first.pipeline_fingerprint() != later.pipeline_fingerprint()


def test_status_timestamps_are_rfc3339_utc_with_z() -> None:
    status = AgentStatus(agent_id="a", status="available")
    assert status.timestamp.endswith("Z") and "T" in status.timestamp
    assert utc_timestamp().endswith("Z")


def test_an_error_message_has_the_protocol_shape() -> None:
    error = TaskError.of(ErrorCode.LLM_ERROR, "the model is unavailable", "t1")
    assert error.model_dump(mode="json") == {
        "error": {"code": "llm_error", "message": "the model is unavailable"},
        "task_id": "t1",
    }


def test_a_defect_in_checking_the_conversation_id_is_not_reported_as_invalid_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(conversation_id: str) -> str:
        raise ZeroDivisionError("a bug, not bad input")

    monkeypatch.setattr("agent2389.protocol.envelope.require_conversation_id", broken)
    with pytest.raises(ZeroDivisionError):
        TaskEnvelope.model_validate(envelope())
