"""What a tool is (PROTOCOL.md §6): described, initialized once, executed many times, shut down.

Custom tools (``impl = "python:package.module:ClassName"``) implement :class:`Tool`; the class is
instantiated without arguments inside a tool process, never in the worker itself. ``execute`` returns
anything JSON can encode (a string is passed to the LLM as it is) and raises
:class:`agent2389.protocol.errors.ToolExecutionError` for a failure the LLM should hear about, or
:class:`agent2389.protocol.errors.RetryableToolError` when the same call may succeed if tried again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypedDict


class ToolDescription(TypedDict):
    """What the LLM is told about a tool; ``parameters`` is a JSON Schema of an object."""

    name: str
    description: str
    parameters: dict[str, Any]


class Tool(Protocol):
    def describe(self) -> Mapping[str, Any]:
        """``{"name": ..., "description": ..., "parameters": <JSON Schema>}``."""
        ...

    def initialize(self, config: Mapping[str, Any]) -> None:
        """Called once per tool process with the tool's ``config`` table; raising keeps the agent unavailable."""
        ...

    def execute(self, parameters: dict[str, Any]) -> Any:
        """Run one call; ``parameters`` already match the tool's schema."""
        ...

    def shutdown(self) -> None:
        """Optional: release what ``initialize`` acquired."""
        ...
