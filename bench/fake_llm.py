"""The fake Anthropic Messages API in a process of its own, answering after a delay, for the benchmarks.

``python -m bench.fake_llm DELAY_S`` prints one JSON line with the server's URL and API key, then
serves until stdin closes or SIGTERM. Each answer repeats the task's user turn, so the load generator
can check that every answer belongs to its task.

It answers like the tests' fake (fakes: the same message bodies, the same key check) but on one
asyncio event loop (aiohttp): a thousand calls waiting at once cost it a thousand sleeping coroutines,
where the tests' threaded server needed a thread per connection and took 6 to 8 s to serve 500 new
connections whose answers were due after 2 s. Benchmarks measure the callers, not the fake.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import threading
from typing import Any

from aiohttp import web

from fakes.anthropic_api import MODELS
from fakes.anthropic_replies import Text, error_body, message_body

API_KEY = "sk-ant-fake-0123456789abcdef"


def echo_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else json.dumps(content)


def application(delay_s: float) -> web.Application:
    async def messages(request: web.Request) -> web.Response:
        if API_KEY not in (request.headers.get("x-api-key"), request.headers.get("authorization", "")[7:]):
            return web.json_response(error_body(401, "invalid x-api-key"), status=401)
        body = await request.json()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        return web.json_response(message_body(Text(echo_text(body)), body))

    async def models(request: web.Request) -> web.Response:
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"} for m in MODELS]
        return web.json_response({"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/v1/models", models)
    return app


async def serve(delay_s: float) -> None:
    runner = web.AppRunner(application(delay_s), access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # A thousand callers connect at once: a short backlog would leave most waiting for a SYN retransmit.
    sock.listen(4096)
    await web.SockSite(runner, sock).start()
    port = sock.getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "api_key": API_KEY}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str]) -> int:
    asyncio.run(serve(float(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
