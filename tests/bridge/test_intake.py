import json
import uuid
from typing import Any

import pytest

from agent2389.config.agent import AgentConfig
from bridge.intake import Accepted, Rejected, depth_error, examine

AGENT = AgentConfig.model_validate({"agent": {"id": "a", "max_message_bytes": 2048}})
TOPIC = "/control/agents/a/input"


def payload(**overrides: Any) -> bytes:
    body = {"task_id": str(uuid.uuid4()), "conversation_id": "c", "topic": TOPIC, "input": "x", **overrides}
    return json.dumps(body).encode()


def test_a_valid_task_is_accepted() -> None:
    assert isinstance(examine(AGENT, TOPIC, payload(), retained=False), Accepted)


def test_a_retained_message_is_ignored_without_reply() -> None:
    decision = examine(AGENT, TOPIC, payload(), retained=True)
    assert isinstance(decision, Rejected) and decision.reason == "retained" and decision.reply is None


def test_a_message_over_the_size_limit_is_rejected_before_parsing() -> None:
    decision = examine(AGENT, TOPIC, b"{" * 2049, retained=False)
    assert isinstance(decision, Rejected) and decision.reason == "oversized" and decision.reply is None


def test_a_message_at_the_size_limit_is_parsed() -> None:
    body = payload(input="")
    body = payload(input="y" * (2048 - len(body)))
    assert len(body) == 2048
    assert isinstance(examine(AGENT, TOPIC, body, retained=False), Accepted)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 5000 + b"]" * 5000])
def test_non_objects_are_rejected_with_no_reply(raw: bytes) -> None:
    big = AgentConfig.model_validate({"agent": {"id": "a", "max_message_bytes": 1 << 20}})
    decision = examine(big, TOPIC, raw, retained=False)
    assert isinstance(decision, Rejected) and decision.reply is None


def test_hostile_nesting_is_rejected_without_recursion_errors() -> None:
    big = AgentConfig.model_validate({"agent": {"id": "a", "max_message_bytes": 1 << 20}})
    raw = payload(input={"x": 1}).replace(b'{"x": 1}', b'{"x": ' * 3000 + b"1" + b"}" * 3000)
    decision = examine(big, TOPIC, raw, retained=False)
    assert isinstance(decision, (Accepted, Rejected))


def test_an_invalid_task_with_a_usable_conversation_gets_an_invalid_input_reply() -> None:
    decision = examine(AGENT, TOPIC, payload(input=None), retained=False)
    assert isinstance(decision, Rejected) and decision.reply is not None
    topic, error = decision.reply
    assert topic == "/conversations/c/a" and error.error.code == "invalid_input"


def test_a_v2_task_whose_context_is_malformed_gets_an_invalid_input_reply_naming_the_field() -> None:
    decision = examine(AGENT, TOPIC, payload(version="2.0", context={"original_query": "q", "iteration_count": "1"}),
                       retained=False)
    assert isinstance(decision, Rejected) and decision.reply is not None
    _, error = decision.reply
    assert error.error.code == "invalid_input" and "context.iteration_count" in error.error.message


def test_an_invalid_task_without_a_usable_conversation_is_only_logged() -> None:
    decision = examine(AGENT, TOPIC, payload(conversation_id="x/#", input=None), retained=False)
    assert isinstance(decision, Rejected) and decision.reply is None


def test_a_defect_while_reading_an_invalid_tasks_conversation_is_not_taken_for_invalid_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(conversation_id: str) -> str:
        raise ZeroDivisionError("a bug, not bad input")

    monkeypatch.setattr("bridge.intake.require_conversation_id", broken)
    with pytest.raises(ZeroDivisionError):
        examine(AGENT, TOPIC, payload(input=None), retained=False)


def test_a_task_for_another_topic_is_discarded_without_reply() -> None:
    decision = examine(AGENT, TOPIC, payload(topic="/control/agents/b/input"), retained=False)
    assert isinstance(decision, Rejected) and decision.reason == "topic_mismatch" and decision.reply is None


def test_depth_over_the_limit_is_a_pipeline_depth_exceeded_reply() -> None:
    shallow = AgentConfig.model_validate({"agent": {"id": "a", "max_pipeline_depth": 2}})
    nxt = {"topic": "/b", "next": {"topic": "/c", "next": None}}
    decision = examine(shallow, TOPIC, payload(next=nxt), retained=False)
    assert isinstance(decision, Accepted)
    rejected = depth_error(shallow, decision.envelope)
    assert rejected is not None and rejected.reply is not None
    assert rejected.reply[1].error.code == "pipeline_depth_exceeded"
    assert depth_error(AGENT, decision.envelope) is None
