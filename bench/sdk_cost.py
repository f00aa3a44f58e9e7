"""``python -m bench.sdk_cost``: the worker CPU one Anthropic SDK call costs, by how many threads call at once.

It points the SDK at the fake Messages API in a process of its own (``bench.fake_llm``) and calls it from
a pool of threads, as a worker's thread pool does, two ways in alternating rounds: each thread making its
call with the blocking client (``workers.llm.anthropic_client.make_client``, what workers did before
issue 19), and each thread handing its call to the async client on one event loop and waiting (what the
``anthropic`` provider does: ``make_async_client`` on a ``workers.llm.call_loop.LoopClient``). For each
thread count it prints the CPU time of this process per call both ways.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic

from agent2389.config.agent import LlmSection
from bench.child import Child
from workers.llm.anthropic_client import make_async_client, make_client
from workers.llm.call_loop import LoopClient
from workers.llm.policy import call_deadline_s

KEY_ENV = "AGENT2389_BENCH_FAKE_KEY"
MESSAGES: list[anthropic.types.MessageParam] = [
    {"role": "user", "content": 'task_id: t-1\ninstruction: say\ninput: {"text": "hello, agent"}'},
]

Call = Callable[[], str]


def blocking(client: anthropic.Anthropic, llm: LlmSection) -> Call:
    def call() -> str:
        return _text(client.messages.create(model=llm.model, max_tokens=llm.max_tokens, messages=MESSAGES,
                                            system=llm.system_prompt))

    return call


def on_loop(client: LoopClient[anthropic.AsyncAnthropic], llm: LlmSection) -> Call:
    def call() -> str:
        return _text(client.run(lambda sdk: sdk.messages.create(model=llm.model, max_tokens=llm.max_tokens,
                                                                 messages=MESSAGES, system=llm.system_prompt)))

    return call


def _text(message: anthropic.types.Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def cpu_ms_per_call(call: Call, threads: int, calls: int) -> tuple[float, float]:
    """(CPU ms of this process per call, calls per second) with ``threads`` calling at once."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: call(), range(threads)))  # every connection opened
        cpu, wall = time.process_time(), time.perf_counter()
        answers = list(pool.map(lambda _: call(), range(calls)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if not all(answers):
        raise SystemExit("the fake API sent an answer without text")
    return cpu / calls * 1000, calls / wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sdk_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1,50,500", help="thread counts to measure (default: 1,50,500)")
    p.add_argument("--waves", type=int, default=6, help="calls per measurement, in calls per thread (at least 40)")
    p.add_argument("--delay", type=float, default=0.2, help="seconds the fake API takes to answer")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the blocking and the loop client")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK warns about old model names
    with tempfile.TemporaryDirectory(prefix="agent2389-sdk-cost-") as directory:
        server = Child("fake-llm", ["-m", "bench.fake_llm", str(args.delay)], Path(directory) / "fake-llm.log")
        try:
            found = server.result(30)
            os.environ[KEY_ENV] = str(found["api_key"])
            llm = LlmSection(provider="anthropic", api_key_env=KEY_ENV, base_url=str(found["url"]))
            client = make_client(llm)
            loop_client = LoopClient("llm-bench", lambda: make_async_client(llm), call_deadline_s(llm))
            ways = (blocking(client, llm), on_loop(loop_client, llm))
            print(f"{'threads':>7} | {'round':>5} | {'blocking ms CPU/call':>20} | {'loop ms CPU/call':>16} | "
                  "calls/s blocking | calls/s loop")
            for threads in (int(n) for n in args.threads.split(",")):
                calls = max(40, threads * args.waves)
                for round_ in range(1, args.rounds + 1):
                    (b_ms, b_rate), (l_ms, l_rate) = (cpu_ms_per_call(way, threads, calls) for way in ways)
                    print(f"{threads:>7} | {round_:>5} | {b_ms:>20.2f} | {l_ms:>16.2f} | {b_rate:>16.0f} | "
                          f"{l_rate:.0f}", flush=True)
            client.close()
            loop_client.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
