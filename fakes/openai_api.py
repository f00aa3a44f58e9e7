"""A fake OpenAI Chat Completions API on loopback, for the real ``openai`` SDK to talk to.

Scripted with the same replies as the Anthropic fake (``Text``, ``tool_calls``, ``Failure``, ``Delay``);
a ``ToolUse`` whose ``input`` is a string is sent as raw (possibly invalid) JSON arguments.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.anthropic_replies import Failure, Text, ToolCalls
from fakes.scripted_api import Answer, ScriptedAPI

API_KEY_ENV = "FAKE_OPENAI_API_KEY"
MODEL = "gpt-fake-1"
FINISH = {"end_turn": "stop", "max_tokens": "length", "refusal": "content_filter"}
_ids = itertools.count(1)


class FakeOpenAI(ScriptedAPI):
    messages_path = "/v1/chat/completions"

    def __init__(self, api_key: str = "sk-fake-openai-0123456789") -> None:
        super().__init__(api_key)
        # OpenAI caches prompt prefixes by itself: the fake reports a system message it has seen before
        # as cached (prompt_tokens_details.cached_tokens), and keeps the usage of every answer.
        self._seen_systems: set[str] = set()
        self.usages: list[dict[str, Any]] = []

    def llm_config(self, **overrides: Any) -> dict[str, Any]:
        return {"provider": "openai", "model": MODEL, "base_url": f"{self.url}/v1", "api_key_env": API_KEY_ENV,
                "max_retries": 0, "timeout_s": 10, **overrides}

    def route(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        if not self.authorized(headers):
            return 401, {}, _error(401, "Incorrect API key provided")
        if method == "GET" and path == "/v1/models":
            return 200, {}, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                                         "owned_by": "fake"}]}
        if method != "POST" or path != self.messages_path:
            return 404, {}, _error(404, "not found")
        problem = _problem(body)
        if problem:
            return 400, {}, _error(400, problem)
        reply = self.next_reply(body)
        if reply is None:
            return 503, {}, _error(503, "fake: shutting down")
        if isinstance(reply, Failure):
            return reply.status, reply.headers, _error(reply.status, reply.message)
        answer = _completion(reply, body)
        system = json.dumps([m for m in body["messages"] if m.get("role") == "system"])
        with self._lock:
            if system != "[]" and system in self._seen_systems:
                answer["usage"]["prompt_tokens_details"] = {"cached_tokens": len(system) // 4}
            self._seen_systems.add(system)
            self.usages.append(answer["usage"])
        return 200, {}, answer


def _problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not body.get("messages") or not body.get("model"):
        return "'model' and 'messages' are required"
    messages = body["messages"]
    for index, message in enumerate(messages):
        wanted = [call["id"] for call in message.get("tool_calls") or []]
        answered = [m.get("tool_call_id") for m in messages[index + 1: index + 1 + len(wanted)]]
        if wanted and sorted(answered) != sorted(wanted):
            return ("An assistant message with 'tool_calls' must be followed by tool messages responding to "
                    "each 'tool_call_id'.")
    return None


def _completion(reply: Text | ToolCalls, request: dict[str, Any]) -> dict[str, Any]:
    if isinstance(reply, Text):
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        finish = FINISH.get(reply.stop_reason, reply.stop_reason)
    else:
        message = {"role": "assistant", "content": reply.text or None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {
                "name": call.name, "arguments": call.input if isinstance(call.input, str) else json.dumps(call.input)}}
            for call in reply.calls]}
        finish = "tool_calls"
    return {"id": f"chatcmpl-fake-{next(_ids)}", "object": "chat.completion", "created": 0,
            "model": request["model"], "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": max(1, len(json.dumps(request["messages"])) // 4),
                      "completion_tokens": max(1, len(json.dumps(message)) // 4),
                      "total_tokens": 0}}


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "code": None}}


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    monkeypatch.setenv(API_KEY_ENV, fake.api_key)
    yield fake
    fake.stop()
