"""Progress events (PROTOCOL.md §10): what an agent says while it works on a task, and on which topic.

The shape is the reference implementation's, so that its tools and ours read each other's events.
Metadata carries names, sizes and durations only, never a tool's parameters or result.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agent2389.protocol.topics import progress_topic

# Every progress topic of every agent: `#` also matches the parent level (`…/progress` itself).
ALL_PROGRESS = "/control/agents/+/progress/#"


class Category(StrEnum):
    GENERAL = "General"
    LLM = "LLM"
    TOOL = "Tool"


class EventType(StrEnum):
    TASK_START = "TaskStart"
    LLM_REQUEST = "LlmRequest"
    LLM_RESPONSE = "LlmResponse"
    LLM_ERROR = "LlmError"
    TOOL_CALL = "ToolCall"
    TOOL_COMPLETE = "ToolComplete"
    TOOL_ERROR = "ToolError"
    ROUTED = "Routed"
    TASK_COMPLETE = "TaskComplete"
    TASK_ERROR = "TaskError"


CATEGORY = {
    EventType.LLM_REQUEST: Category.LLM, EventType.LLM_RESPONSE: Category.LLM, EventType.LLM_ERROR: Category.LLM,
    EventType.TOOL_CALL: Category.TOOL, EventType.TOOL_COMPLETE: Category.TOOL, EventType.TOOL_ERROR: Category.TOOL,
}
SUBTOPIC = {Category.GENERAL: "", Category.LLM: "/llm", Category.TOOL: "/tools"}


def category_of(event_type: EventType) -> Category:
    return CATEGORY.get(event_type, Category.GENERAL)


def event_topic(agent_id: str, event_type: EventType) -> str:
    return progress_topic(agent_id) + SUBTOPIC[category_of(event_type)]


def progress_event(agent_id: str, task_id: str, conversation_id: str, event_type: EventType, message: str,
                   metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """One event; ``message`` must already be safe to publish (see workers/progress.py)."""
    return {
        "agent_id": agent_id,
        "task_id": task_id,
        "conversation_id": conversation_id,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "category": category_of(event_type).value,
        "event_type": event_type.value,
        "message": message,
        "metadata": metadata or {},
    }


def is_progress_topic(topic: str) -> bool:
    parts = topic.strip("/").split("/")
    return len(parts) in (4, 5) and parts[:2] == ["control", "agents"] and parts[3] == "progress"
