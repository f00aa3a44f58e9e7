"""The fake Anthropic Messages API (tests/fakes) in a process of its own, answering after a delay.

``python -m bench.fake_llm DELAY_S`` prints one JSON line with the server's URL and API key, then
serves until stdin closes or SIGTERM. Each answer repeats the task's user turn, so the load generator
can check that every answer belongs to its task.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import Any

from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.anthropic_replies import Delay, Reply, Text


def echo_reply(delay_s: float) -> Any:
    def respond(body: dict[str, Any]) -> Reply:
        content = body["messages"][-1]["content"]
        text = content if isinstance(content, str) else json.dumps(content)
        return Delay(delay_s, Text(text)) if delay_s > 0 else Text(text)

    return respond


def _set_when_stdin_closes(stop: threading.Event) -> None:
    sys.stdin.read()
    stop.set()


def main(argv: list[str]) -> int:
    delay_s = float(argv[0])
    # A thousand worker threads open their connections at once: the default listen backlog of 5 would
    # make most of them wait for a SYN retransmit (a second or more).
    ThreadingHTTPServer.request_queue_size = 4096
    fake = FakeAnthropic().start()
    fake.respond(echo_reply(delay_s))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    print(json.dumps({"url": fake.url, "api_key": fake.api_key}), flush=True)
    threading.Thread(target=_set_when_stdin_closes, args=(stop,), daemon=True).start()
    stop.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
