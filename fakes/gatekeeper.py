"""A gatekeeper (PROTOCOL.md §9) on a loopback address that answers from a script, one reply per request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fakes.http_server import Answer, LocalServer, Seen

# A scripted reply: an HTTP status with a JSON body, raw bytes, or HANG (no answer until the test ends).
Reply = tuple[int, Any]
HANG: Reply = (0, None)


class Gatekeeper:
    def __init__(self, replies: list[Reply], repeat_last: bool = True) -> None:
        self.requests: list[dict[str, Any]] = []
        self._replies = list(replies)
        self._repeat_last = repeat_last
        self._lock = threading.Lock()
        self.released = threading.Event()

    def answer(self, seen: Seen) -> Answer:
        with self._lock:
            self.requests.append(json.loads(seen.body))
            reply = self._replies.pop(0) if len(self._replies) > 1 or not self._repeat_last else self._replies[0]
        if reply is HANG:
            self.released.wait(30)
            return 503, {}, b""
        status, body = reply
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        return status, {"content-type": "application/json"}, payload


def forward_to(agent_id: str, instruction: str = "carry on", reasoning: str = "scripted") -> Reply:
    return 200, {"workflow_complete": False, "next_agent": agent_id, "next_instruction": instruction,
                 "reasoning": reasoning}


def complete(reasoning: str = "done") -> Reply:
    return 200, {"workflow_complete": True, "reasoning": reasoning}


@contextmanager
def gatekeeper(*replies: Reply) -> Iterator[tuple[Gatekeeper, str]]:
    """The scripted gatekeeper and its URL; the last reply repeats."""
    keeper = Gatekeeper(list(replies))
    with LocalServer(keeper.answer) as server:
        try:
            yield keeper, f"{server.url}/should_agents_respond"
        finally:
            keeper.released.set()
