"""``python -m bench.sdk_cost``: the worker CPU one Anthropic SDK call costs, by how many threads call at once.

It builds the client the ``anthropic`` provider uses (``workers.llm.anthropic_client.make_client``),
points it at the fake Messages API in a process of its own (``bench.fake_llm``), and calls it from a pool
of threads, as a worker's thread pool does. For each thread count it prints the CPU time of this process
per call, for the SDK's parsed response (what the runner uses) and for ``with_raw_response`` read as plain
JSON (the SDK's response models skipped), in alternating rounds.
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
from workers.llm.anthropic_client import make_client

KEY_ENV = "AGENT2389_BENCH_FAKE_KEY"
MESSAGES: list[anthropic.types.MessageParam] = [
    {"role": "user", "content": 'task_id: t-1\ninstruction: say\ninput: {"text": "hello, agent"}'},
]

Call = Callable[[anthropic.Anthropic, LlmSection], str]


def parsed(client: anthropic.Anthropic, llm: LlmSection) -> str:
    message = client.messages.create(model=llm.model, max_tokens=llm.max_tokens, messages=MESSAGES,
                                      system=llm.system_prompt)
    return "".join(block.text for block in message.content if block.type == "text")


def raw(client: anthropic.Anthropic, llm: LlmSection) -> str:
    response = client.messages.with_raw_response.create(model=llm.model, max_tokens=llm.max_tokens,
                                                        messages=MESSAGES, system=llm.system_prompt)
    body = response.http_response.json()
    return "".join(block["text"] for block in body["content"] if block["type"] == "text")


def cpu_ms_per_call(call: Call, client: anthropic.Anthropic, llm: LlmSection, threads: int,
                    calls: int) -> tuple[float, float]:
    """(CPU ms of this process per call, calls per second) with ``threads`` calling at once."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: call(client, llm), range(threads)))  # every thread's connection opened
        cpu, wall = time.process_time(), time.perf_counter()
        answers = list(pool.map(lambda _: call(client, llm), range(calls)))
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
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of parsed and raw")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK warns about old model names
    with tempfile.TemporaryDirectory(prefix="agent2389-sdk-cost-") as directory:
        server = Child("fake-llm", ["-m", "bench.fake_llm", str(args.delay)], Path(directory) / "fake-llm.log")
        try:
            found = server.result(30)
            os.environ[KEY_ENV] = str(found["api_key"])
            llm = LlmSection(provider="anthropic", api_key_env=KEY_ENV, base_url=str(found["url"]))
            client = make_client(llm)
            print(f"{'threads':>7} | {'round':>5} | {'parsed ms CPU/call':>18} | {'raw ms CPU/call':>15} | calls/s")
            for threads in (int(n) for n in args.threads.split(",")):
                calls = max(40, threads * args.waves)
                for round_ in range(1, args.rounds + 1):
                    (p_ms, p_rate), (r_ms, _) = (cpu_ms_per_call(call, client, llm, threads, calls)
                                                 for call in (parsed, raw))
                    print(f"{threads:>7} | {round_:>5} | {p_ms:>18.2f} | {r_ms:>15.2f} | {p_rate:.0f}", flush=True)
            client.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
