"""Topic names of the 2389 protocol (PROTOCOL.md §2) and the rules for the ids inside them."""

from __future__ import annotations

import re

from agent2389.protocol.errors import ConfigError, InvalidInputError

AGENT_ID_PATTERN = re.compile(r"[a-zA-Z0-9._-]+")
_SLASH_RUNS = re.compile(r"/+")
_FORBIDDEN_IN_CONVERSATION_ID = ("/", "+", "#", "\x00")
MAX_TOPIC_BYTES = 65535


def is_publishable(text: str) -> bool:
    """Whether ``text`` may be part of a topic we publish to.

    Mosquitto disconnects a client that publishes to a topic with a control character, a non-character
    or a lone surrogate (MQTT 5 §1.5.4), and paho resends the message after every reconnect: one such
    id from another agent would cut the bridge's or a worker's connection for good.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        return False
    return not any(_unpublishable(ord(char)) for char in text)


def _unpublishable(code: int) -> bool:
    return (code <= 0x1F or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or 0xFDD0 <= code <= 0xFDEF
            or code & 0xFFFE == 0xFFFE)


def canonicalize(topic: str) -> str:
    """Exactly one leading ``/``, no trailing ``/``, runs of ``/`` collapsed. Idempotent."""
    return "/" + _SLASH_RUNS.sub("/", topic).strip("/")


def is_valid_agent_id(agent_id: str) -> bool:
    return AGENT_ID_PATTERN.fullmatch(agent_id) is not None


def require_agent_id(agent_id: str) -> str:
    if not is_valid_agent_id(agent_id):
        raise ConfigError(f"agent id {agent_id!r} must match [a-zA-Z0-9._-]+")
    return agent_id


def require_conversation_id(conversation_id: str) -> str:
    """A conversation id becomes one topic level: no separators, wildcards or NUL."""
    if not conversation_id:
        raise InvalidInputError("conversation_id must not be empty")
    if any(bad in conversation_id for bad in _FORBIDDEN_IN_CONVERSATION_ID):
        raise InvalidInputError("conversation_id must not contain '/', '+', '#' or NUL")
    if not is_publishable(conversation_id):
        raise InvalidInputError("conversation_id must not contain control characters, non-characters or "
                                "lone surrogates")
    return conversation_id


def input_topic(agent_id: str) -> str:
    return f"/control/agents/{agent_id}/input"


def status_topic(agent_id: str) -> str:
    return f"/control/agents/{agent_id}/status"


def progress_topic(agent_id: str) -> str:
    return f"/control/agents/{agent_id}/progress"


def conversation_topic(conversation_id: str, agent_id: str) -> str:
    return f"/conversations/{require_conversation_id(conversation_id)}/{agent_id}"


def agent_id_from_input_topic(topic: str) -> str | None:
    """The agent id of a canonical input topic, or None when the topic is not one."""
    parts = canonicalize(topic).split("/")
    if len(parts) == 5 and parts[1:3] == ["control", "agents"] and parts[4] == "input":
        return parts[3]
    return None
