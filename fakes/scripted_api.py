"""The machinery the fake LLM APIs share: a loopback HTTP server, scripted replies, recorded requests.

Script replies (``Text``, ``tool_calls(...)``, ``Failure``, ``Delay`` from :mod:`anthropic_replies`) with
``reply``, optionally per model so tests sharing one server do not take each other's, or answer with a
function of the request (``respond``). Subclasses turn requests into responses (``route``).
"""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from fakes.anthropic_replies import Answered, Delay, Failure, Reply, Responder

Answer = tuple[int, dict[str, str], Any]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer_port: int = 0  # the client's side of the connection: one port per connection it opened


class ScriptedAPI:
    messages_path = "/v1/messages"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self._queues: dict[str | None, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self._responders: dict[str | None, Responder] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(self, *replies: Reply, model: str | None = None) -> None:
        """Answer the next requests (for ``model`` only, if given) with these, in order."""
        with self._lock:
            self._queues[model].extend(replies)

    def respond(self, responder: Responder, model: str | None = None) -> None:
        """Answer with ``responder(request_body)`` whenever no scripted reply is left."""
        with self._lock:
            self._responders[model] = responder

    def message_requests(self, model: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests if r.path == self.messages_path and r.method == "POST"
                    and isinstance(r.body, dict) and (model is None or r.body.get("model") == model)]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def route(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        raise NotImplementedError

    def next_reply(self, body: dict[str, Any]) -> Answered | None:
        """The scripted reply for this request, after any delay; None when the server is stopping."""
        model = body.get("model")
        with self._lock:
            queued = next((self._queues[key] for key in (model, None) if self._queues[key]), None)
            reply = queued.popleft() if queued else None
            responder = self._responders.get(model) or self._responders.get(None)
        if reply is None:
            reply = responder(body) if responder else Failure(400, f"fake: no reply scripted for model {model!r}")
        while isinstance(reply, Delay):
            if self._stopping.wait(reply.seconds):
                return None
            reply = reply.then
        return reply

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.api_key}" or headers.get("x-api-key") == self.api_key

    def _answer(self, method: str, path: str, headers: dict[str, str], body: Any, peer_port: int = 0) -> Answer:
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body, peer_port))
        return self.route(method, path, headers, body)


class _Server(ThreadingHTTPServer):
    # Workers open hundreds of connections at once; past the default backlog of 5, connects would wait
    # for a SYN retransmit or fail.
    request_queue_size = 1024


def _handler_for(api: ScriptedAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: under Nagle's algorithm the body waits for the client's
        # delayed ACK of the headers, about 40 ms on every call of a kept-alive connection.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._serve(None)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode(errors="replace")
            self._serve(body)

        def _serve(self, body: Any) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = api._answer(self.command, urlsplit(self.path).path, headers, body,
                                                 int(self.client_address[1]))
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                for name, value in {"content-type": "application/json", "request-id": "req_fake", **extra}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left; that is what some tests want

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
