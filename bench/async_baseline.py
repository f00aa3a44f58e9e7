"""The fan-in baseline: the bare async Anthropic SDK making the fan-in scenario's calls, with nothing around them.

``python -m bench.async_baseline URL KEY_ENV CALLS IN_FLIGHT`` makes ``CALLS`` Messages API calls to the fake
API at ``URL`` with ``anthropic.AsyncAnthropic`` on one event loop (over small connection pools, as a worker
spreads its calls), ``IN_FLIGHT`` at a time, and prints one JSON line: calls answered, wall seconds, this
process's CPU seconds and peak RSS. The fan-in scenario runs as many
of these processes as it runs workers, so its ratio compares like with like: the same calls, the same fake,
the same delay, the same process count, with no MQTT, Celery or Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time

import anthropic

from workers.llm.call_loop import ClientPool
from workers.llm.policy import CONNECTION_LIMITS

MESSAGES: list[anthropic.types.MessageParam] = [
    {"role": "user", "content": 'task_id: t-1\ninstruction: say\ninput: {"text": "hello, agent"}'},
]


async def call_all(url: str, key: str, calls: int, in_flight: int) -> int:
    limit = asyncio.Semaphore(in_flight)

    def make() -> anthropic.AsyncAnthropic:
        # The worker's connection limits (workers/llm/policy.py): the SDK's default keeps only 100 idle
        # connections, and reconnecting the rest on every wave would measure the fake server's accept loop.
        http_client = anthropic.DefaultAioHttpClient(limits=CONNECTION_LIMITS)
        return anthropic.AsyncAnthropic(api_key=key, base_url=url, max_retries=0, timeout=30.0,
                                        http_client=http_client)

    # The worker's spreading of calls over small connection pools too (workers/llm/call_loop.py): one
    # client with 500 calls at once spends most of its CPU walking its pool, and a baseline that did
    # would flatter the workers.
    clients = ClientPool(make)

    async def one() -> bool:
        async with limit:
            message = await clients.use(lambda client: client.messages.create(
                model="claude-sonnet-5-5", max_tokens=256, messages=MESSAGES))
            return any(block.type == "text" for block in message.content)

    try:
        answered = await asyncio.gather(*(one() for _ in range(calls)), return_exceptions=True)
    finally:
        await clients.close()
    return sum(1 for ok in answered if ok is True)


def main(argv: list[str]) -> int:
    url, key_env, calls, in_flight = argv[0], argv[1], int(argv[2]), int(argv[3])
    print("ready", flush=True)
    cpu, wall = time.process_time(), time.perf_counter()
    answered = asyncio.run(call_all(url, os.environ[key_env], calls, in_flight))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"calls": calls, "answered": answered, "seconds": wall, "cpu_s": cpu,
                      "peak_rss_mb": peak_rss_mb}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
