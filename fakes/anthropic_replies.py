"""What the fake Anthropic API answers: scripted replies and how each becomes an HTTP response."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 503: "api_error", 529: "overloaded_error",
}
_ids = itertools.count(1)


@dataclass(frozen=True)
class Text:
    """A final answer."""

    text: str
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any] | str  # a string is sent as it is (the OpenAI fake: raw, maybe invalid, JSON)
    id: str = field(default_factory=lambda: f"toolu_fake_{next(_ids):06d}")


@dataclass(frozen=True)
class ToolCalls:
    """A turn that asks for one or more tool calls (several = parallel tool use)."""

    calls: tuple[ToolUse, ...]
    text: str = ""


@dataclass(frozen=True)
class Failure:
    status: int
    message: str = "the fake API was told to fail"
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str | None = None


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (an SDK time-out shorter than this fires first), then answer ``then``."""

    seconds: float
    then: Reply


Reply = Text | ToolCalls | Failure | Delay
# What a reply comes to once its delays have passed.
Answered = Text | ToolCalls | Failure
Responder = Callable[[dict[str, Any]], Reply]


def tool_calls(*calls: ToolUse, text: str = "") -> ToolCalls:
    return ToolCalls(tuple(calls), text)


def message_body(reply: Text | ToolCalls, request: dict[str, Any],
                 usage: Callable[[dict[str, Any], int], dict[str, int]] | None = None) -> dict[str, Any]:
    """The response; ``usage(request, output_tokens)`` counts the tokens (default: no prompt cache)."""
    if isinstance(reply, Text):
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
        stop_reason, output = reply.stop_reason, reply.text
    else:
        content = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in reply.calls]
        stop_reason, output = "tool_use", json.dumps(content)
    return {
        "id": f"msg_fake_{next(_ids):06d}",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "unknown"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage(request, max(1, len(output) // 4)) if usage else {
            "input_tokens": max(1, len(json.dumps(request.get("messages", []))) // 4),
            "output_tokens": max(1, len(output) // 4)},
    }


def error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    kind = error_type or ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of the request's last user turn (what the agent's tools returned)."""
    last = request["messages"][-1]
    content = last.get("content")
    if last.get("role") != "user" or not isinstance(content, list):
        return []
    return [block for block in content if block.get("type") == "tool_result"]
