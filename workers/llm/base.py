"""What a worker asks of an LLM provider: verify once at start, then turn one task into final text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agent2389.config.agent import AgentConfig
from workers.progress import NO_PROGRESS, TaskProgress


@dataclass(frozen=True)
class TaskRequest:
    """The part of a task envelope the LLM step needs (PROTOCOL.md §5 step 8)."""

    agent: AgentConfig
    task_id: str
    conversation_id: str
    instruction: str | None
    input: dict[str, Any] | str
    # Where the runner tells what it does (PROTOCOL.md §10): LLM calls and tool calls.
    progress: TaskProgress = field(default=NO_PROGRESS, compare=False, repr=False)


class Runner(Protocol):
    """Runs step 8 for one agent: the LLM, and the tool loop where the provider has one.

    ``verify`` raises :class:`agent2389.protocol.errors.LLMError` (or a tool's error) when the agent cannot
    serve; ``run`` raises an :class:`agent2389.protocol.errors.Agent2389Error` subclass whose code is the
    protocol error code to publish.
    """

    def verify(self) -> None: ...

    def run(self, request: TaskRequest) -> str: ...

    def close(self) -> None: ...
