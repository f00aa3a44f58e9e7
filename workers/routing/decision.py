"""What a routing strategy is given and what it answers (PROTOCOL.md §9), whatever the strategy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent2389.config.agent import AgentConfig
from agent2389.protocol.envelope import TaskEnvelope, WorkflowStep
from agent2389.protocol.errors import Agent2389Error, ErrorCode

MAX_REASON_CHARS = 500


class Candidate(Protocol):
    """A routable agent as the registry describes it (agent2389.state.registry.AgentRecord)."""

    @property
    def agent_id(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def capabilities(self) -> tuple[str, ...]: ...

    @property
    def load(self) -> float: ...


class Directory(Protocol):
    """Where the routable agents are listed (agent2389.state.registry.AgentRegistry)."""

    def routable(self) -> Sequence[Candidate]: ...


class RoutingError(Agent2389Error):
    """A decision could not be made (time-out, refused or invalid answer): the workflow completes."""

    code = ErrorCode.INTERNAL_ERROR


@dataclass(frozen=True)
class Situation:
    """Everything a strategy may look at once this agent produced its output."""

    agent: AgentConfig
    envelope: TaskEnvelope
    original_query: str
    iteration_count: int
    steps_completed: list[WorkflowStep]
    output: str
    candidates: list[Candidate]


@dataclass(frozen=True)
class Decision:
    """Complete, or forward to ``next_agent`` with ``instruction`` (and ``input``, for a handoff)."""

    complete: bool
    reason: str
    next_agent: str | None = None
    instruction: str | None = None
    input: Any = None

    @classmethod
    def finish(cls, reason: str) -> Decision:
        return cls(complete=True, reason=reason)


class Strategy(Protocol):
    name: str

    def decide(self, situation: Situation) -> Decision: ...


def short_reason(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def describe_candidate(candidate: Candidate) -> dict[str, Any]:
    """A routable agent as the routing model and a gatekeeper see it."""
    return {"agent_id": candidate.agent_id, "description": candidate.description,
            "capabilities": list(candidate.capabilities), "load": candidate.load}
