"""The progress events of one task (PROTOCOL.md §10), one method per event.

A :class:`TaskProgress` is made per delivery and handed down to the runner and the tools; it turns each
step into an event and gives it to a :class:`ProgressSink` that must never block (in a worker, the
:class:`workers.progress_publisher.ProgressPublisher`). Metadata holds names, counts, sizes and durations,
never a tool's parameters or result.

Messages are safe to publish like error messages: our own words, names from the agent file or checked
against the tool-name pattern, and free text (errors, routing reasons) through the error sanitizer. Only
that free text is sanitized: the sanitizer costs a fraction of a millisecond per message, and a task
tells several events.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from agent2389.protocol.progress import EventType, event_topic, progress_event
from agent2389.protocol.sanitize import sanitize_error_message

MAX_ERROR_CHARS = 160
# The tool names the providers accept; a name the LLM made up that is not one is not repeated.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_.:-]{1,128}$")


class ProgressSink(Protocol):
    def emit(self, topic: str, payload: str) -> None:
        """Hand over one event; returns at once (an event that cannot go out is dropped and counted)."""
        ...


class NoProgress:
    def emit(self, topic: str, payload: str) -> None:
        return None


NO_SINK = NoProgress()


class TaskProgress:
    def __init__(self, sink: ProgressSink, agent_id: str, task_id: str, conversation_id: str,
                 secrets: list[str] | None = None) -> None:
        self._sink = sink
        self._agent_id = agent_id
        self._task_id = task_id
        self._conversation_id = conversation_id
        self._secrets = secrets or []
        # False when progress is off: then not even an event's sizes are computed.
        self.enabled = sink is not NO_SINK

    def task_start(self, task_input: Any, **metadata: Any) -> None:
        if self.enabled:
            self._emit(EventType.TASK_START, "task started", input_bytes=_size(task_input), **metadata)

    def llm_request(self, call: int, model: str, tools: int) -> None:
        self._emit(EventType.LLM_REQUEST, f"LLM call {call} to {model}", call=call, model=model, tools=tools)

    def llm_response(self, call: int, duration_s: float, stop: str, tool_calls: int, input_tokens: int,
                     output_tokens: int) -> None:
        asked = f", {tool_calls} tool call{'s' if tool_calls != 1 else ''}" if tool_calls else ""
        self._emit(EventType.LLM_RESPONSE, f"LLM answered in {duration_s:.2f} s ({stop}{asked})", call=call,
                   duration_ms=_ms(duration_s), tool_calls=tool_calls, input_tokens=input_tokens,
                   output_tokens=output_tokens)

    def llm_error(self, call: int, duration_s: float, error: str) -> None:
        if self.enabled:
            self._emit(EventType.LLM_ERROR, f"LLM call {call} failed: {self._clean(error)}", call=call,
                       duration_ms=_ms(duration_s))

    def tool_call(self, tool: str, parameters: Any, **names: str) -> None:
        if self.enabled:
            tool, names = _tool_name(tool), _checked(names)
            self._emit(EventType.TOOL_CALL, f"calling {_tool_words(tool, names)}", tool=tool,
                       parameters_bytes=_size(parameters), **names)

    def tool_complete(self, tool: str, duration_s: float, result: str, **names: str) -> None:
        if self.enabled:
            tool, names = _tool_name(tool), _checked(names)
            self._emit(EventType.TOOL_COMPLETE, f"{_tool_words(tool, names)} done in {duration_s:.2f} s",
                       tool=tool, duration_ms=_ms(duration_s), result_bytes=_size(result), **names)

    def tool_error(self, tool: str, duration_s: float, error: str, **names: str) -> None:
        if self.enabled:
            tool, names, reason = _tool_name(tool), _checked(names), self._clean(error)
            if len(reason) > MAX_ERROR_CHARS:
                reason = reason[: MAX_ERROR_CHARS - 1] + "…"
            self._emit(EventType.TOOL_ERROR, f"{_tool_words(tool, names)} failed: {reason}", tool=tool,
                       duration_ms=_ms(duration_s), **names)

    def routed(self, to_agent: str, reason: str, step_number: int, **metadata: Any) -> None:
        """A v2 workflow moved on to ``to_agent`` (PROTOCOL.md §9); called by the routing step."""
        if self.enabled:
            self._emit(EventType.ROUTED, f"routed to {to_agent}: {self._clean(reason)}", to_agent=to_agent,
                       step_number=step_number, **metadata)

    def task_complete(self, duration_s: float, published_to: str, payload: str) -> None:
        if self.enabled:
            self._emit(EventType.TASK_COMPLETE, f"task completed in {duration_s:.2f} s", duration_ms=_ms(duration_s),
                       published_to=published_to, payload_bytes=_size(payload))

    def task_error(self, duration_s: float, code: str, message: str) -> None:
        """``message`` is the published error's, sanitized already."""
        self._emit(EventType.TASK_ERROR, f"task failed ({code}): {message}", duration_ms=_ms(duration_s),
                   error_code=code)

    def _clean(self, text: str) -> str:
        return sanitize_error_message(text, self._secrets)

    def _emit(self, event_type: EventType, message: str, **metadata: Any) -> None:
        if not self.enabled:
            return
        event = progress_event(self._agent_id, self._task_id, self._conversation_id, event_type, message, metadata)
        self._sink.emit(event_topic(self._agent_id, event_type), json.dumps(event, ensure_ascii=False))


NO_PROGRESS = TaskProgress(NO_SINK, "-", "-", "-")


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _size(value: Any) -> int:
    """Bytes of ``value`` as JSON (a string: as UTF-8 text)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return len(text.encode("utf-8", "replace"))


def _tool_name(name: str) -> str:
    return name if TOOL_NAME.match(name) else "(a tool name that is not valid)"


def _checked(names: dict[str, str]) -> dict[str, str]:
    """An MCP server's names for itself and its tool, as safe as a tool name."""
    return {key: _tool_name(value) for key, value in names.items()}


def _tool_words(tool: str, names: dict[str, str]) -> str:
    if "mcp_tool" in names:
        return f"MCP tool {names['mcp_tool']} of {names.get('mcp_server', '?')} ({tool})"
    return f"tool {tool}"
