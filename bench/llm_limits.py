"""``python -m bench.llm_limits``: what the fleet-wide LLM limiter costs, and what it buys under overload.

1. **Limiter cost**: ``slot()`` with a free slot, called N times in a row against the real Redis: CPU
   ms of this process and Redis round trips per call (counted on the client), and wall time per call.
2. **Fan-in**: THREADS threads answer TASKS tasks through the anthropic runner against the fake Messages
   API (fakes), which serves CAPACITY calls at once and answers 429 ``retry-after`` to the excess,
   as a provider's concurrency limit does. Once without a limit (the SDK retries the 429s, up to
   ``max_retries``), once with ``max_concurrency = CAPACITY``. Prints goodput (answered tasks per
   second), failed tasks, the 429s the fake sent, and p50/p99 task latency.

Everything runs in this one process (the fake API too), so absolute numbers are lower than a worker's;
the comparison between the two runs is the point. docs/llm.md has a run's results.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from agent2389.config import environment
from agent2389.config.agent import AgentConfig
from agent2389.config.settings import DEFAULT_REDIS_URL
from agent2389.protocol.errors import LLMError
from agent2389.state.keys import Keys
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Delay, Failure, Reply, Text
from workers.llm.anthropic_runner import AnthropicRunner
from workers.llm.base import TaskRequest
from workers.llm.limiter import FleetLimiter, Limits


class CapacityFake(FakeAnthropic):
    """Serves ``capacity`` calls at once; the excess gets 429 with ``retry-after``."""

    def __init__(self, capacity: int, delay_s: float, retry_after_s: float) -> None:
        super().__init__()
        self.refused = 0
        self.respond(self._capacity_reply)
        self._capacity, self._delay_s, self._retry_after = capacity, delay_s, retry_after_s

    def _capacity_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            over = self.in_flight > self._capacity
            self.refused += over
        if over:
            return Failure(429, headers={"retry-after": str(self._retry_after)})
        return Delay(self._delay_s, Text("ok"))


def limiter_cost(client: redis.Redis, keys: Keys, calls: int) -> dict[str, float]:
    round_trips = 0
    execute = client.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        nonlocal round_trips
        round_trips += 1
        return execute(*args, **options)  # type: ignore[no-untyped-call]

    client.execute_command = counted  # type: ignore[method-assign]
    limiter = FleetLimiter(client, keys, "bench", Limits(max_concurrency=1_000))
    try:
        with limiter.slot():
            pass  # the scripts are loaded into Redis
        round_trips = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            with limiter.slot():
                pass
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        limiter.close()
        client.execute_command = execute  # type: ignore[method-assign]
    return {"cpu_ms": cpu / calls * 1000, "wall_ms": wall / calls * 1000, "round_trips": round_trips / calls}


def fan_in(fake: CapacityFake, client: redis.Redis, keys: Keys, limit: int | None, threads: int, tasks: int,
           max_retries: int) -> dict[str, float]:
    agent = AgentConfig.model_validate({"agent": {"id": f"bench-{uuid.uuid4().hex[:6]}"},
                                        "llm": fake.llm_config(max_retries=max_retries, max_concurrency=limit)})
    limiter = FleetLimiter(client, keys, agent.id, Limits(max_concurrency=limit)) if limit else None
    runner = AnthropicRunner(agent, limiter=limiter)
    refused_before = fake.refused

    def one(n: int) -> tuple[bool, float]:
        started = time.perf_counter()
        request = TaskRequest(agent=agent, task_id=f"t-{n}", conversation_id="c", instruction=None, input=f"task {n}")
        try:
            runner.run(request)
        except LLMError:
            return False, time.perf_counter() - started
        return True, time.perf_counter() - started

    try:
        wall = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(one, range(tasks)))
        wall = time.perf_counter() - wall
    finally:
        runner.close()
    latencies = sorted(seconds for ok, seconds in results if ok)
    answered = len(latencies)
    return {"goodput": answered / wall, "failed": tasks - answered, "refused_429": fake.refused - refused_before,
            "p50_ms": _pct(latencies, 50) * 1000, "p99_ms": _pct(latencies, 99) * 1000}


def _pct(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, int(len(values) * pct / 100))] if values else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.llm_limits", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=2000, help="limiter calls to time (default 2000)")
    p.add_argument("--threads", type=int, default=60, help="threads calling at once in the fan-in (default 60)")
    p.add_argument("--tasks", type=int, default=600, help="tasks in each fan-in run (default 600)")
    p.add_argument("--capacity", type=int, default=10, help="calls the fake API serves at once (default 10)")
    p.add_argument("--delay", type=float, default=0.05, help="seconds the fake API takes per call (default 0.05)")
    p.add_argument("--retry-after", type=float, default=0.5, help="the 429's retry-after, seconds (default 0.5)")
    p.add_argument("--max-retries", type=int, default=2, help="[llm] max_retries (default 2)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    client = redis.Redis.from_url(environment.value(environment.REDIS_URL, DEFAULT_REDIS_URL))
    keys = Keys(f"agent2389-bench-{uuid.uuid4().hex[:8]}")
    fake = CapacityFake(args.capacity, args.delay, args.retry_after).start()
    os.environ[API_KEY_ENV] = fake.api_key
    try:
        cost = limiter_cost(client, keys, args.calls)
        print(f"limiter, free slot: {cost['cpu_ms']:.3f} ms CPU, {cost['wall_ms']:.3f} ms wall, "
              f"{cost['round_trips']:.2f} Redis round trips per call")
        print(f"{'fan-in':>16} | {'goodput/s':>9} | {'failed':>6} | {'429s':>5} | {'p50 ms':>8} | {'p99 ms':>8}")
        for name, limit in (("no limit", None), (f"max_conc. {args.capacity}", args.capacity)):
            run = fan_in(fake, client, keys, limit, args.threads, args.tasks, args.max_retries)
            print(f"{name:>16} | {run['goodput']:9.1f} | {run['failed']:6.0f} | {run['refused_429']:5.0f} | "
                  f"{run['p50_ms']:8.1f} | {run['p99_ms']:8.1f}")
    finally:
        fake.stop()
        for key in client.scan_iter(f"{keys.prefix}:*"):
            client.delete(key)
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
