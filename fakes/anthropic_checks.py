"""The request checks the real Messages API makes that matter to a tool loop; a failed check is a 400."""

from __future__ import annotations

import re
from typing import Any

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
SAMPLING_PARAMETERS = ("temperature", "top_p", "top_k")
CURRENT_VERSION = "2026-10-21"


def request_problem(body: Any, api_version: str) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: must be a positive integer"
    if api_version == CURRENT_VERSION:
        for key in SAMPLING_PARAMETERS:
            if key in body:
                return f"{key}: Extra inputs are not permitted"
    return _tools_problem(body.get("tools", [])) or _messages_problem(body["messages"])


def _tools_problem(tools: Any) -> str | None:
    if not isinstance(tools, list):
        return "tools: must be a list"
    for index, tool in enumerate(tools):
        if not TOOL_NAME.match(str(tool.get("name", ""))):
            return f"tools.{index}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        if (tool.get("input_schema") or {}).get("type") != "object":
            return f"tools.{index}.input_schema.type: Input should be 'object'"
    return None


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return "messages: the first message must use the user role"
    for index, message in enumerate(messages):
        if index and message.get("role") == messages[index - 1].get("role"):
            return f"messages.{index}: roles must alternate between user and assistant"
        for block in _blocks(message):
            if block.get("type") == "text" and not block.get("text"):
                return f"messages.{index}: text content blocks must be non-empty"
        wanted = [b["id"] for b in _blocks(message) if b.get("type") == "tool_use"]
        if wanted:
            problem = _answered(messages, index, wanted)
            if problem:
                return problem
    return None


def _answered(messages: list[Any], index: int, wanted: list[str]) -> str | None:
    following = messages[index + 1] if index + 1 < len(messages) else None
    blocks = _blocks(following) if following else []
    results = [str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"]
    leading = [str(b.get("tool_use_id")) for b in blocks[: len(results)]]
    if sorted(results) != sorted(wanted) or leading != results:
        return (f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                "after; each tool_use block must have a corresponding tool_result block in the next message")
    return None


def _blocks(message: Any) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]
