"""Read an agent status from the wire, ours or another implementation's (PROTOCOL.md §3, §8).

Tolerant by design: only ``agent_id`` and ``status`` are required; an optional field of the wrong shape
counts as absent rather than making the whole status unreadable, and extra fields are ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from agent2389.protocol.topics import canonicalize, is_valid_agent_id

# A status is a few hundred bytes; anything much larger is not one, and would bloat the registry.
MAX_STATUS_BYTES = 64 * 1024
MAX_DESCRIPTION_CHARS = 1000
MAX_CAPABILITIES = 100
MAX_CAPABILITY_CHARS = 200
STATUSES = ("available", "unavailable")


class NotAStatusError(ValueError):
    """The payload on a status topic is not an agent status; the message says why, briefly."""


@dataclass(frozen=True)
class StatusFields:
    agent_id: str
    status: str
    description: str
    capabilities: tuple[str, ...]
    load: float
    workers: int | None


def agent_id_from_status_topic(topic: str) -> str | None:
    """The agent id of ``/control/agents/{id}/status``, or None when the topic is not a status topic."""
    parts = canonicalize(topic).split("/")
    if len(parts) == 5 and parts[1:3] == ["control", "agents"] and parts[4] == "status":
        return parts[3] if is_valid_agent_id(parts[3]) else None
    return None


def parse_status(agent_id: str, payload: bytes) -> StatusFields:
    """The status ``payload`` published on ``agent_id``'s status topic, or NotAStatusError."""
    if len(payload) > MAX_STATUS_BYTES:
        raise NotAStatusError(f"larger than {MAX_STATUS_BYTES} bytes")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise NotAStatusError("not JSON") from None
    if not isinstance(body, dict):
        raise NotAStatusError("not a JSON object")
    if body.get("agent_id") != agent_id:
        raise NotAStatusError("agent_id missing or not the topic's agent")
    status = body.get("status")
    if status not in STATUSES:
        raise NotAStatusError("status is neither 'available' nor 'unavailable'")
    return StatusFields(
        agent_id=agent_id,
        status=str(status),
        description=_description(body.get("description")),
        capabilities=_capabilities(body.get("capabilities")),
        load=_load(body.get("load")),
        workers=_workers(body.get("workers")),
    )


def _description(value: Any) -> str:
    return value[:MAX_DESCRIPTION_CHARS] if isinstance(value, str) else ""


def _capabilities(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = [item[:MAX_CAPABILITY_CHARS] for item in value if isinstance(item, str) and item]
    return tuple(dict.fromkeys(names))[:MAX_CAPABILITIES]


def _load(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, float(value)))


def _workers(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
