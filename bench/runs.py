"""One measured run each: agent2389 under load, the bare Celery no-op, and the bare paho round trip."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from agent2389.ops.local_services import LocalService
from agent2389.state.keys import Keys
from bench.celery_baseline import STOCK, TRANSPORT_ENV
from bench.child import Child
from bench.load import LoadSpec, percentile
from bench.procstats import Watch
from bench.report import Row
from bench.services import BenchError, delete_keys
from bench.stack import Stack, wait_until_available, write_agents

ECHO = {"provider": "echo", "model": "echo"}
NOOP_AGENT = "bench-noop"
RTT_HOOK = Path(__file__).resolve().parent / "rtt_hook"


@dataclass
class Context:
    redis_url: str
    broker: LocalService  # the bench's own Mosquitto
    run_dir: Path
    redis_pid: int | None
    log_level: str = "INFO"
    extra_pids: dict[str, int] = field(default_factory=dict)
    rtt_dir: Path | None = None  # set: processes under test count their Redis round trips here

    def watch(self, pids: dict[str, int]) -> Watch:
        shared = {"mosquitto": self.broker.pid, **({"redis": self.redis_pid} if self.redis_pid else {})}
        return Watch({**pids, **self.extra_pids, **shared})

    def env(self) -> dict[str, str]:
        """Environment of the processes under test (the round-trip counter goes in when asked for)."""
        if self.rtt_dir is None:
            return {}
        path = os.pathsep.join(p for p in (str(RTT_HOOK), os.environ.get("PYTHONPATH", "")) if p)
        return {"PYTHONPATH": path, "AGENT2389_BENCH_RTT_DIR": str(self.rtt_dir)}

    def round_trips(self, pids: dict[str, int]) -> dict[str, int]:
        """Redis round trips each named process made so far (empty when not counting)."""
        counts: dict[str, int] = {}
        for name, pid in pids.items():
            if self.rtt_dir is None:
                break
            try:
                counts[name] = int((self.rtt_dir / str(pid)).read_text())
            except (OSError, ValueError):
                continue
        return counts

    def directory(self, name: str) -> Path:
        path = self.run_dir / f"{name}-{uuid.uuid4().hex[:4]}"
        path.mkdir(parents=True)
        return path


@contextmanager
def agent_stack(ctx: Context, name: str, agent_ids: list[str], workers: int, concurrency: int,
                llm: dict[str, Any], env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A bridge and ``workers`` worker processes serving ``agent_ids``; every key removed afterwards."""
    stack = Stack(ctx.directory(name), ctx.redis_url, ctx.broker.port,
                  extra_env={"AGENT2389_LOG_LEVEL": ctx.log_level, **ctx.env(), **(env or {})})
    config = write_agents(stack.run_dir / "agents", agent_ids, f"mqtt://127.0.0.1:{ctx.broker.port}", llm)
    try:
        for number in range(1, workers + 1):
            stack.agent2389(f"worker-{number}", "worker", config, "--concurrency", str(concurrency))
        stack.agent2389("bridge", "bridge", config)
        wait_until_available(ctx.broker.port, agent_ids, stack)
        yield stack
    finally:
        stack.stop()
        delete_keys(ctx.redis_url, stack.key_prefix)


def load_run(ctx: Context, scenario: str, run: str, workers: int, spec: LoadSpec,
             stack: Stack | None = None) -> Row:
    """Publish ``spec``'s tasks from a load-generator process and time the answers."""
    directory = stack.run_dir if stack else ctx.directory(scenario)
    child = Child("load", ["-m", "bench.load", json.dumps(asdict(spec))], directory / f"load-{time.time():.0f}.log")
    try:
        pids = stack.pids() if stack else {}
        watch = ctx.watch({**pids, "load": child.pid})
        child.expect("ready", 30)
        watch.start(time.monotonic())
        before = ctx.round_trips(pids)
        child.expect("done", 24 * 3600)
        usage = watch.stop(time.monotonic())
        time.sleep(0.25 if before else 0)  # the counters are written ten times a second
        after = ctx.round_trips(pids)
        result = child.result(spec.linger_s + 30)
    finally:
        child.stop()
    if stack is not None:
        stack.check_alive()
    errors = result["errors"] + result["wrong"]
    note = "; ".join(result["first_errors"][:2]) or _per_task(before, after, result["answered"])
    return Row(scenario, run, workers, result["sent"], result["answered"], result["lost"], result["duplicated"],
               errors, result["seconds"], result["throughput"], result["latency_ms"], usage, note)


def celery_run(ctx: Context, scenario: str, workers: int, concurrency: int, count: int,
               transport: str = STOCK) -> Row:
    """``count`` no-op tasks through ``workers`` Celery worker processes, drained to the last ack: bare Celery
    (kombu's Redis transport) or, with ``transport=AGENT2389``, Celery on agent2389's transport."""
    prefix = f"agent2389-bench-{uuid.uuid4().hex[:8]}"
    keys = Keys(prefix)
    queue = f"agent.{NOOP_AGENT}"
    directory = ctx.directory("celery-noop")
    env = {**os.environ, "AGENT2389_REDIS_URL": ctx.redis_url, **ctx.env(), TRANSPORT_ENV: transport}
    module = ["-m", "bench.celery_baseline"]
    children = [Child(f"worker-{n}", [*module, "worker", prefix, queue, str(concurrency)],
                      directory / f"worker-{n}.log", env) for n in range(1, workers + 1)]
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        for child in children:
            child.expect("ready", 60)
        producer = Child("producer", [*module, "produce", prefix, queue, str(count)], directory / "producer.log", env)
        children.append(producer)
        pids = {c.name: c.pid for c in children}
        watch = ctx.watch(pids)
        watch.start(time.monotonic())
        before = ctx.round_trips(pids)
        sent = producer.result(24 * 3600)
        _wait_for_drain(client, keys.queue(NOOP_AGENT), f"{keys.celery_prefix()}unacked")
        usage = watch.stop(time.monotonic())
        time.sleep(0.25 if before else 0)
        after = ctx.round_trips(pids)
        reports = []
        for child in children[:-1]:
            child.stop()
            reports.append(child.result(10))
    finally:
        for child in children:
            child.stop()
        client.close()
        delete_keys(ctx.redis_url, prefix)
    done = sum(int(r["count"]) for r in reports)
    finished = max(float(r["finished"]) for r in reports)
    latencies = sorted(v for r in reports for v in r["latencies_ms"])
    seconds = max(finished - float(sent["started"]), 1e-9)
    latency = {name: round(percentile(latencies, q), 2) for name, q in (("p50", .5), ("p95", .95), ("p99", .99))}
    name = "celery no-op" if transport == STOCK else "celery no-op, agent2389 transport"
    return Row(scenario, name, workers, count, done, max(0, count - done), max(0, done - count), 0,
               round(seconds, 3), round(done / seconds, 1), latency, usage, _per_task(before, after, done))


def _per_task(before: dict[str, int], after: dict[str, int], tasks: int) -> str:
    """Redis round trips per task, by kind of process (workers added up), while the load ran."""
    if not before or not tasks:
        return ""
    kinds: dict[str, int] = {}
    for name, count in after.items():
        kind = name.split("-")[0]
        kinds[kind] = kinds.get(kind, 0) + count - before.get(name, 0)
    return "Redis round trips per task: " + ", ".join(f"{k} {n / tasks:.2f}" for k, n in sorted(kinds.items()))


def _wait_for_drain(client: redis.Redis, queue_key: str, unacked_key: str, idle_limit_s: float = 60.0) -> None:
    """Until the queue is empty and nothing is unacknowledged (seen twice, to step over a handover)."""
    empty_checks, last_change, last_state = 0, time.monotonic(), (-1, -1)
    while empty_checks < 2:
        state = (int(client.llen(queue_key)), int(client.hlen(unacked_key)))
        empty_checks = empty_checks + 1 if state == (0, 0) else 0
        if state != last_state:
            last_change, last_state = time.monotonic(), state
        if time.monotonic() - last_change > idle_limit_s:
            raise BenchError(f"the no-op queue stopped draining at {state}")
        time.sleep(0.02)
