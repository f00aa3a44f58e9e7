"""Progress events (PROTOCOL.md §10) and routing traces (§9) as lines an operator reads.

Events from other implementations are shown as well as ours: any field may be missing or of another type.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_CHARS = 200


def progress_line(event: dict[str, Any]) -> str:
    """``researcher  ToolCall      calling tool file_read``."""
    agent = _text(event.get("agent_id")) or "?"
    kind = _text(event.get("event_type")) or "?"
    message = _text(event.get("message"))
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return f"{agent:<14} {kind:<13} {message}".rstrip()


def trace_lines(trace: Any) -> list[str]:
    """A v2 answer's ``routing_trace``, one hop a line: ``1. researcher -> writer: needs prose``."""
    if not isinstance(trace, list) or not trace:
        return []
    lines = ["routing trace:"]
    for index, hop in enumerate(trace, start=1):
        if not isinstance(hop, dict):
            lines.append(f"  {index}. (unreadable entry)")
            continue
        step = hop.get("step_number", index)
        reason = _text(hop.get("reason"))
        target = _text(hop.get("to_agent")) or "(complete)"
        lines.append(f"  {step}. {_text(hop.get('from_agent')) or '?'} -> {target}{': ' + reason if reason else ''}")
    return lines


def _text(value: Any) -> str:
    """Printable text of one field: control characters (a terminal's escape sequences) become spaces."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text)
