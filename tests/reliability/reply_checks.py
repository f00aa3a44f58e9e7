"""What every message agent2389 publishes must look like (PROTOCOL.md §3), however hostile its input."""

from __future__ import annotations

import json
import uuid
from typing import Any

from agent2389.protocol.errors import ErrorCode
from agent2389.protocol.topics import canonicalize

LEAKS = ("Traceback", 'File "', "site-packages", "/work/", "/root", "/home/", "/usr/", ".py", "redis://", "mqtt://")


def assert_publishable_topic(topic: str) -> None:
    raw = topic.encode("utf-8")  # paho cannot publish to a topic that is not valid UTF-8
    assert len(raw) <= 65535, f"topic of {len(raw)} bytes"
    assert not any(bad in topic for bad in ("+", "#", "\x00")), f"wildcard or NUL in topic {topic!r}"
    assert canonicalize(topic) == topic, f"topic not canonical: {topic!r}"
    # Mosquitto disconnects a publisher for these (its lib/utf8_mosq.c, after MQTT 5 section 1.5.4).
    rejected = [c for c in topic if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xFDD0 <= ord(c) <= 0xFDEF
                or ord(c) & 0xFFFF in (0xFFFE, 0xFFFF)]
    assert not rejected, f"the broker would disconnect whoever publishes to {topic!r}"


def assert_conversation_topic(topic: str, agent_id: str) -> None:
    assert_publishable_topic(topic)
    parts = topic.split("/")
    assert len(parts) == 4 and parts[:2] == ["", "conversations"] and parts[3] == agent_id, topic


def assert_well_formed_answer(payload: str | bytes, task_id: str | None = None) -> dict[str, Any]:
    """A response or an error with a protocol code and a short, safe message."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    body = json.loads(raw.decode("utf-8"))
    assert isinstance(body, dict), body
    if "response" in body:
        assert set(body) == {"task_id", "response"} and isinstance(body["response"], str), body
    else:
        assert set(body) == {"error", "task_id"}, body
        error = body["error"]
        assert set(error) == {"code", "message"} and error["code"] in {c.value for c in ErrorCode}, body
        message = error["message"]
        assert isinstance(message, str) and 0 < len(message) <= 500, body
        assert not any(leak in message for leak in LEAKS), f"unsafe error message: {message!r}"
    if body["task_id"] is not None:
        uuid.UUID(body["task_id"])
    if task_id is not None:
        assert body["task_id"] == task_id, (body, task_id)
    return body
