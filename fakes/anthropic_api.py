"""A fake Anthropic Messages API on loopback, for the real ``anthropic`` SDK to talk to.

Script it with replies (``fake.reply(Text("hi"))``, ``fake.reply(tool_calls(ToolUse(...)))``,
``fake.reply(Failure(429, headers={"retry-after": "0"}))``, ``Delay(2, Text(...))``) or with a function of
the request (``fake.respond(fn)``); see :mod:`scripted_api`. It serves the models list, checks requests
the way the real API does where a tool loop can get them wrong (auth, alternating roles, a tool_result for
every tool_use, no sampling parameters) and records every request.

Other test packages use the fixture by importing it in their conftest.py:
``from fakes.anthropic_api import fake_anthropic  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fakes.anthropic_cache import PromptCache
from fakes.anthropic_checks import request_problem
from fakes.anthropic_replies import Failure, error_body, message_body
from fakes.scripted_api import Answer, Recorded, ScriptedAPI

__all__ = ["API_KEY_ENV", "MODELS", "FakeAnthropic", "Recorded", "fake_anthropic"]

API_KEY_ENV = "FAKE_ANTHROPIC_API_KEY"
MODELS = ("claude-sonnet-5-5", "claude-haiku-5-5")


class FakeAnthropic(ScriptedAPI):
    def __init__(self, api_key: str = "sk-ant-fake-0123456789abcdef", models: tuple[str, ...] = MODELS) -> None:
        super().__init__(api_key)
        self.models = models
        self.cache = PromptCache()
        # The usage of every message the fake answered, as it reported it.
        self.usages: list[dict[str, int]] = []
        # Message requests being answered now, and the most there ever were at once.
        self.in_flight = 0
        self.peak_in_flight = 0

    def llm_config(self, **overrides: Any) -> dict[str, Any]:
        """An ``[llm]`` table that points the anthropic provider at this server."""
        return {"provider": "anthropic", "model": MODELS[0], "base_url": self.url, "api_key_env": API_KEY_ENV,
                "max_retries": 0, "timeout_s": 10, **overrides}

    def route(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        if not self.authorized(headers):
            return 401, {}, error_body(401, "invalid x-api-key")
        if method == "GET" and path == "/v1/models":
            data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}
                    for m in self.models]
            return 200, {}, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        if method != "POST" or path != self.messages_path:
            return 404, {}, error_body(404, "not found")
        problem = request_problem(body, headers.get("anthropic-version", ""))
        if problem:
            return 400, {}, error_body(400, problem)
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            reply = self.next_reply(body)
        finally:
            with self._lock:
                self.in_flight -= 1
        if reply is None:
            return 503, {}, error_body(503, "fake: shutting down")
        if isinstance(reply, Failure):
            return reply.status, reply.headers, error_body(reply.status, reply.message, reply.error_type)
        answer = message_body(reply, body, self.cache.usage)
        with self._lock:
            self.usages.append(answer["usage"])
        return 200, {}, answer


@pytest.fixture
def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """A running fake; its API key is in the environment as FAKE_ANTHROPIC_API_KEY (see ``llm_config``)."""
    fake = FakeAnthropic().start()
    monkeypatch.setenv(API_KEY_ENV, fake.api_key)
    yield fake
    fake.stop()
