"""The messages of the 2389 protocol (PROTOCOL.md §3), parsed and validated once at the boundary.

Unknown fields are ignored for meaning but carried along, so v2 fields (``version``, ``context``,
``routing_trace``) reach the next agent of a static pipeline unchanged. A v2 envelope's ``context`` is
checked here too (§9): present but malformed, it is ``invalid_input`` like any other bad field.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent2389.protocol.errors import ErrorCode, InvalidInputError
from agent2389.protocol.topics import canonicalize, is_publishable, require_conversation_id

MAX_ERROR_MESSAGE_CHARS = 500
_FORBIDDEN_IN_TOPIC = ("+", "#", "\x00")


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with a ``Z`` suffix, as every protocol timestamp is written."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _require_publishable_topic(topic: str) -> str:
    if not topic.strip("/"):
        raise ValueError("topic must name at least one level")
    if any(bad in topic for bad in _FORBIDDEN_IN_TOPIC):
        raise ValueError("topic must not contain '+', '#' or NUL")
    if not is_publishable(topic):
        raise ValueError("topic must be at most 65535 bytes without control characters or non-characters")
    return topic


def walk_pipeline(next_step: Any) -> int:
    """Count the nested ``next`` objects, iteratively, so hostile nesting cannot exhaust the stack.

    Raises ValueError when a step is not a JSON object with a string ``topic``.
    """
    count = 0
    while next_step is not None:
        if not isinstance(next_step, dict):
            raise ValueError("next must be an object or null")
        topic = next_step.get("topic")
        if not isinstance(topic, str):
            raise ValueError("next.topic must be a string")
        _require_publishable_topic(topic)
        instruction = next_step.get("instruction")
        if instruction is not None and not isinstance(instruction, str):
            raise ValueError("next.instruction must be a string or null")
        count += 1
        next_step = next_step.get("next")
    return count


class WorkflowStep(BaseModel):
    """One entry of ``context.steps_completed``: an agent that did its part of a v2 workflow."""

    model_config = ConfigDict(extra="allow")

    agent_id: str = Field(max_length=256)
    action: str | None = None
    timestamp: str = Field(default_factory=utc_timestamp, max_length=64)


class WorkflowContext(BaseModel):
    """A v2 envelope's ``context`` (PROTOCOL.md §9): what the workflow was asked and who worked on it.

    A field that is present must have its type. Missing, ``iteration_count`` is 0 and ``steps_completed``
    empty (as the reference reads them), and ``original_query`` None: the routing step then takes it from
    this envelope, as on a workflow's first hop, and the context it forwards carries it (docs/protocol.md).
    """

    model_config = ConfigDict(extra="allow")

    original_query: str | None = None
    iteration_count: int = Field(default=0, ge=0, le=1_000_000, strict=True)
    steps_completed: list[WorkflowStep] = Field(default_factory=list)


class NextTask(BaseModel):
    model_config = ConfigDict(extra="allow")

    topic: str
    instruction: str | None = None
    input: Any = None
    next: dict[str, Any] | None = None


class TaskEnvelope(BaseModel):
    """A task as received on ``/control/agents/{id}/input``."""

    model_config = ConfigDict(extra="allow")

    task_id: str = Field(min_length=1, max_length=64)
    conversation_id: str = Field(min_length=1, max_length=256)
    topic: str = Field(min_length=1, max_length=1024)
    instruction: str | None = None
    input: dict[str, Any] | str
    next: dict[str, Any] | None = None

    @field_validator("task_id")
    @classmethod
    def _task_id_is_uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError("must be a UUID") from None
        return value

    @field_validator("conversation_id")
    @classmethod
    def _conversation_id_is_one_level(cls, value: str) -> str:
        try:
            return require_conversation_id(value)
        except InvalidInputError as exc:
            raise ValueError(str(exc).removeprefix("conversation_id ")) from None

    @field_validator("next", mode="after")
    @classmethod
    def _pipeline_is_well_formed(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        walk_pipeline(value)
        return value

    @model_validator(mode="after")
    def _v2_context_is_well_formed(self) -> TaskEnvelope:
        if self.is_v2:
            self.workflow_context()
            trace = (self.model_extra or {}).get("routing_trace")
            if trace is not None and not (isinstance(trace, list) and all(isinstance(h, dict) for h in trace)):
                raise ValueError("routing_trace must be a list of objects")
        return self

    @property
    def is_v2(self) -> bool:
        """A v2 envelope says so with a ``version`` string starting with "2" (PROTOCOL.md §9)."""
        version = (self.model_extra or {}).get("version")
        return isinstance(version, str) and version.startswith("2")

    def workflow_context(self) -> WorkflowContext | None:
        """The v2 ``context``; None when absent (a workflow's first envelope) or not a v2 envelope."""
        raw = (self.model_extra or {}).get("context") if self.is_v2 else None
        if raw is None:
            return None
        try:
            return WorkflowContext.model_validate(raw)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in ("context", *problem["loc"]))
            raise ValueError(f"{where}: {problem['msg']}") from None

    def routing_trace(self) -> list[dict[str, Any]]:
        trace = (self.model_extra or {}).get("routing_trace") if self.is_v2 else None
        return list(trace) if isinstance(trace, list) else []

    @property
    def depth(self) -> int:
        """1 + the number of nested ``next`` objects [FR-013]."""
        return 1 + walk_pipeline(self.next)

    def pipeline_fingerprint(self) -> str:
        """Identifies this visit: same task id and same remaining pipeline = same delivery [FR-010]; for a v2
        envelope with a context also the same ``iteration_count``, so a workflow may visit an agent twice."""
        identity: Any = self.next
        context = self.workflow_context()
        if context is not None:
            identity = {"next": self.next, "iteration_count": context.iteration_count}
        remaining = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        digest = hashlib.blake2b(remaining.encode(), digest_size=12).hexdigest()
        return f"{self.task_id}:{digest}"

    def forwarded(self, final_text: str) -> TaskEnvelope:
        """The envelope for the ``next`` agent: its input is this agent's final text."""
        if self.next is None:
            raise ValueError("no next step to forward to")
        step = NextTask.model_validate(self.next)
        extras = {k: v for k, v in (self.model_extra or {}).items()}
        return TaskEnvelope.model_validate(
            {
                **extras,
                **(step.model_extra or {}),
                "task_id": self.task_id,
                "conversation_id": self.conversation_id,
                "topic": canonicalize(step.topic),
                "instruction": step.instruction,
                "input": final_text,
                "next": step.next,
            }
        )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class AgentStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    agent_id: str
    status: Literal["available", "unavailable"]
    timestamp: str = Field(default_factory=utc_timestamp)


class TaskResponse(BaseModel):
    task_id: str
    response: str


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str = Field(max_length=MAX_ERROR_MESSAGE_CHARS)


class TaskError(BaseModel):
    error: ErrorBody
    task_id: str | None

    @classmethod
    def of(cls, code: ErrorCode, message: str, task_id: str | None) -> TaskError:
        return cls(error=ErrorBody(code=code, message=message), task_id=task_id)
