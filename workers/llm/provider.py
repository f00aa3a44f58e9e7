"""What the tool loop (:mod:`workers.llm.tool_loop`) asks of one LLM SDK: one adapter per SDK.

The loop owns everything the providers share (budget, fleet limits, stats, tools, error recording); an
adapter only speaks its SDK: it builds the client, turns the agent's tools and the conversation into that
SDK's request, and reads the answer back as a :class:`Turn`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent2389.protocol.errors import LLMError
from agent2389.state.usage import TokenUsage
from workers.tools.base import ToolDescription
from workers.tools.executor import ToolOutcome


@dataclass(frozen=True)
class ToolUse:
    """One tool call the model asked for; ``id`` pairs it with its result in the next request."""

    id: str
    name: str
    parameters: Any


@dataclass(frozen=True)
class Turn:
    """One answer of the model, as the loop reads it.

    ``calls`` is empty when the model did not stop to have tools run (its answer is final). ``stop``
    names why it stopped, in the provider's words, for error messages. ``declined`` is set when the
    model refused to answer; ``problem`` when the answer cannot be used at all. ``raw`` is the SDK's
    answer, for the adapter alone.
    """

    text: str
    calls: list[ToolUse]
    usage: TokenUsage
    stop: str
    declined: str | None = None
    problem: str | None = None
    raw: Any = field(default=None, repr=False)


class Provider(Protocol):
    """One SDK. Every method may be called from many threads at once; conversations live on the caller's
    stack (a list of the SDK's messages that only the adapter reads or changes). The SDK adapters make
    their requests on an event loop of their own (:mod:`workers.llm.call_loop`) and block only the caller."""

    def open(self) -> None:
        """Make the client if there is none yet; LLMError when it cannot be made (e.g. no API key)."""
        ...

    def verify(self) -> None:
        """Key and endpoint work, at no token cost; raises LLMError."""
        ...

    def conversation(self, user_text: str) -> list[Any]:
        """A new conversation whose only turn is ``user_text`` (with the agent's system prompt)."""
        ...

    def turn(self, messages: list[Any], tools: Sequence[ToolDescription], force_tool: str | None = None,
             model: str | None = None) -> Turn:
        """One LLM request: the conversation so far, the tools offered, the one tool the model must call
        (if any), the model (default the agent's). SDK errors are raised as they are; see ``error``."""
        ...

    def add_results(self, messages: list[Any], turn: Turn, outcomes: Sequence[ToolOutcome]) -> None:
        """Append the model's ``turn`` and the outcomes of its calls (in the order of ``turn.calls``)."""
        ...

    def error(self, exc: Exception) -> LLMError:
        """The safe LLMError for anything ``turn`` or ``verify`` raised."""
        ...

    def close(self) -> None: ...
