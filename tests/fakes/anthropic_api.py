"""A fake Anthropic Messages API on loopback, for the real ``anthropic`` SDK to talk to.

Script it with replies (``fake.reply(Text("hi"))``, ``fake.reply(tool_calls(ToolUse(...)))``,
``fake.reply(Failure(429, headers={"retry-after": "0"}))``, ``Delay(2, Text(...))``) or with a function of
the request (``fake.respond(fn)``). Replies can be scripted per model, so tests sharing one server do not
take each other's. It checks requests the way the real API does where a tool loop can get it wrong (auth,
alternating roles, a tool_result for every tool_use) and records every request.

Other test packages use the fixture by importing it in their conftest.py:
``from tests.fakes.anthropic_api import fake_anthropic  # noqa: F401``.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.anthropic_checks import request_problem
from tests.fakes.anthropic_replies import Delay, Failure, Reply, Responder, error_body, message_body

API_KEY_ENV = "FAKE_ANTHROPIC_API_KEY"
MODELS = ("claude-sonnet-5-5", "claude-haiku-5-5")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeAnthropic:
    def __init__(self, api_key: str = "sk-ant-fake-0123456789abcdef", models: tuple[str, ...] = MODELS) -> None:
        self.api_key = api_key
        self.models = models
        self.requests: list[Recorded] = []
        self._queues: dict[str | None, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self._responders: dict[str | None, Responder] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-anthropic",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(self, *replies: Reply, model: str | None = None) -> None:
        """Answer the next messages requests (for ``model`` only, if given) with these, in order."""
        with self._lock:
            self._queues[model].extend(replies)

    def respond(self, responder: Responder, model: str | None = None) -> None:
        """Answer with ``responder(request_body)`` whenever no scripted reply is left."""
        with self._lock:
            self._responders[model] = responder

    def message_requests(self, model: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests if r.path == "/v1/messages" and r.method == "POST"
                    and isinstance(r.body, dict) and (model is None or r.body.get("model") == model)]

    def llm_config(self, **overrides: Any) -> dict[str, Any]:
        """An ``[llm]`` table that points the anthropic provider at this server."""
        return {"provider": "anthropic", "model": MODELS[0], "base_url": self.url, "api_key_env": API_KEY_ENV,
                "max_retries": 0, "timeout_s": 10, **overrides}

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next_reply(self, model: str | None, body: dict[str, Any]) -> Reply:
        with self._lock:
            for key in (model, None):
                if self._queues[key]:
                    return self._queues[key].popleft()
            responder = self._responders.get(model) or self._responders.get(None)
        if responder is None:
            return Failure(400, f"fake: no reply scripted for model {model!r}")
        return responder(body)

    def _answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body))
        if not self._authorized(headers):
            return 401, {}, error_body(401, "invalid x-api-key")
        if method == "GET" and path == "/v1/models":
            data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}
                    for m in self.models]
            return 200, {}, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        if method != "POST" or path != "/v1/messages":
            return 404, {}, error_body(404, "not found")
        problem = request_problem(body, headers.get("anthropic-version", ""))
        if problem:
            return 400, {}, error_body(400, problem)
        reply = self._next_reply(body.get("model"), body)
        while isinstance(reply, Delay):
            if self._stopping.wait(reply.seconds):
                return 503, {}, error_body(503, "fake: shutting down")
            reply = reply.then
        if isinstance(reply, Failure):
            return reply.status, reply.headers, error_body(reply.status, reply.message, reply.error_type)
        return 200, {}, message_body(reply, body)

    def _authorized(self, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        return headers.get("x-api-key") == self.api_key or bearer == f"Bearer {self.api_key}"


def _handler_for(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve(None)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                self._serve(json.loads(raw or b"null"))
            except ValueError:
                self._send(400, {}, error_body(400, "the body is not JSON"))

        def _serve(self, body: Any) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake._answer(self.command, urlsplit(self.path).path, headers, body)
            self._send(status, extra, payload)

        def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                for name, value in {"content-type": "application/json", "request-id": "req_fake", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left; that is what some tests want

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@pytest.fixture
def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """A running fake; its API key is in the environment as FAKE_ANTHROPIC_API_KEY (see ``llm_config``)."""
    fake = FakeAnthropic().start()
    monkeypatch.setenv(API_KEY_ENV, fake.api_key)
    yield fake
    fake.stop()
