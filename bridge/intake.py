"""Steps 2 to 5 and 7 of PROTOCOL.md §5: everything about an input message that needs no Redis and no LLM.

Pure functions: a message goes in, a decision comes out. The bridge acts on the decision.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent2389.config.agent import AgentConfig
from agent2389.protocol.envelope import TaskEnvelope, TaskError
from agent2389.protocol.errors import ErrorCode, InvalidInputError
from agent2389.protocol.sanitize import sanitize_error_message
from agent2389.protocol.topics import canonicalize, conversation_topic, input_topic, require_conversation_id


@dataclass(frozen=True)
class Accepted:
    envelope: TaskEnvelope


@dataclass(frozen=True)
class Rejected:
    """A message not to process. ``reply`` (topic, error) is published when the sender can be told."""

    reason: str
    log_message: str
    reply: tuple[str, TaskError] | None = None


Decision = Accepted | Rejected
# pydantic serializes at most 255 levels: a deeper task was accepted here, then failed on its way to the
# queue and vanished without an answer (found by the intake fuzz, docs/reliability.md).
MAX_NESTING = 128


def examine(agent: AgentConfig, topic: str, payload: bytes | bytearray, retained: bool) -> Decision:
    """Decide what to do with one message received for ``agent`` (everything short of deduplication)."""
    if retained:
        return Rejected("retained", "ignored a retained message on the input topic")
    limit = agent.agent.max_message_bytes
    if len(payload) > limit:
        return Rejected("oversized", f"rejected a {len(payload)}-byte message (limit {limit} bytes)")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return Rejected("invalid_json", "rejected a message that is not JSON")
    if not isinstance(data, dict):
        return Rejected("invalid_json", "rejected a message that is not a JSON object")
    problem = _unfit(data)
    if problem is not None:
        return _invalid_envelope(agent, data, problem)
    try:
        envelope = TaskEnvelope.model_validate(data)
    except (ValidationError, RecursionError) as exc:
        return _invalid_envelope(agent, data, exc)
    if canonicalize(envelope.topic) != canonicalize(topic) or canonicalize(topic) != input_topic(agent.id):
        return Rejected("topic_mismatch", f"discarded a task whose topic {envelope.topic!r} is not {topic!r}")
    return Accepted(envelope)


def depth_error(agent: AgentConfig, envelope: TaskEnvelope) -> Rejected | None:
    """Step 7: a pipeline deeper than the agent allows fails before any LLM call."""
    limit = agent.agent.max_pipeline_depth
    if envelope.depth <= limit:
        return None
    error = TaskError.of(
        ErrorCode.PIPELINE_DEPTH_EXCEEDED, f"pipeline depth {envelope.depth} exceeds the maximum of {limit}",
        envelope.task_id,
    )
    reply = (conversation_topic(envelope.conversation_id, agent.id), error)
    return Rejected("pipeline_depth_exceeded", error.error.message, reply)


def _invalid_envelope(agent: AgentConfig, data: dict[str, Any], exc: Exception) -> Rejected:
    message = _describe_invalid(exc)
    conversation_id = data.get("conversation_id")
    task_id = data.get("task_id") if isinstance(data.get("task_id"), str) else None
    try:
        topic = conversation_topic(require_conversation_id(conversation_id), agent.id) if isinstance(
            conversation_id, str) else None
    except InvalidInputError:
        topic = None
    if topic is None:
        return Rejected("invalid_input", f"rejected an invalid task with no usable conversation_id: {message}")
    error = TaskError.of(ErrorCode.INVALID_INPUT, message, _usable_task_id(task_id))
    return Rejected("invalid_input", f"rejected an invalid task: {message}", (topic, error))


def _unfit(document: dict[str, Any]) -> ValueError | None:
    """What makes a parsed task impossible to carry any further (to the queue, to MQTT), if anything."""
    if _nesting(document) > MAX_NESTING:
        return ValueError(f"nested more than {MAX_NESTING} levels deep")
    try:
        # JSON escapes can carry lone surrogates, which no UTF-8 encoder (pydantic, paho) accepts.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return ValueError("text must be valid Unicode (no lone surrogates)")
    return None


def _nesting(document: Any) -> int:
    """How deeply arrays and objects nest in ``document``, counted without recursion."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, level = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is not None:
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in children)
    return deepest


def _describe_invalid(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "invalid task: nested too deeply"
    if not isinstance(exc, ValidationError):
        return sanitize_error_message(f"invalid task: {exc}")
    problems = []
    for err in exc.errors()[:5]:
        field = ".".join(str(part) for part in err["loc"]) or "task"
        text = "is required" if err["type"] == "missing" else str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{field} {text}" if err["type"] == "missing" else f"{field}: {text}")
    return sanitize_error_message("invalid task: " + "; ".join(problems))


def _usable_task_id(task_id: str | None) -> str | None:
    """Echo a task id only when it is a UUID: anything else may carry what must not be published."""
    try:
        return task_id if task_id is not None and len(task_id) <= 64 and uuid.UUID(task_id) else None
    except ValueError:
        return None


