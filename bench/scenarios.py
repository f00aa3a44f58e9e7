"""The scenarios of issue 8, each a list of measured rows; sizes scale with ``Sizes.tasks``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench.celery_baseline import AGENT2389
from bench.child import Child
from bench.load import LoadSpec
from bench.procstats import ProcessUsage
from bench.report import HALF_PEAK, Row
from bench.routing import routing_rows
from bench.runs import ECHO, Context, agent_stack, celery_run, load_run

FAN_IN_WORKERS = 2


@dataclass
class Sizes:
    tasks: int = 20_000  # the overhead run; the others derive from it
    workers: int = 1  # worker processes for overhead, baseline and pipeline
    concurrency: int = 100  # threads per worker process (agent2389 worker's default)
    window: int = 1000  # tasks unanswered at once when looking for the peak
    scale: tuple[int, ...] = (1, 2, 4)
    latency_seconds: float = 15.0  # length of the open-loop run at half of the peak
    llm_delay_s: float = 2.0  # the fan-in scenario's LLM
    in_flight: int = 1000  # the fan-in scenario's tasks in flight
    fan_in_threads: int = 0  # threads per fan-in worker process; 0: in_flight / its processes
    measured: dict[str, float] = field(default_factory=dict)  # peaks found so far, by scenario


def _agents(*roles: str) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"bench-{role}-{run}" for role in roles]


def overhead(ctx: Context, sizes: Sizes) -> list[Row]:
    agents = _agents("a")
    with agent_stack(ctx, "overhead", agents, sizes.workers, sizes.concurrency, ECHO) as stack:
        peak = load_run(ctx, "overhead", "peak", sizes.workers,
                        LoadSpec(ctx.broker.port, agents, sizes.tasks, window=sizes.window), stack)
        rate = max(1.0, peak.throughput / 2)
        sizes.measured["overhead"] = peak.throughput
        count = max(10, int(rate * sizes.latency_seconds))
        half = load_run(ctx, "overhead", f"{HALF_PEAK} ({rate:.0f}/s)", sizes.workers,
                        LoadSpec(ctx.broker.port, agents, count, rate=rate), stack)
    return [peak, half]


def baseline(ctx: Context, sizes: Sizes) -> list[Row]:
    noop = celery_run(ctx, "baseline", sizes.workers, sizes.concurrency, sizes.tasks)
    # The same no-op on agent2389's transport: how much of the gap is the transport, how much our work.
    noop_ours = celery_run(ctx, "baseline", sizes.workers, sizes.concurrency, sizes.tasks, transport=AGENT2389)
    loop = load_run(ctx, "baseline", "paho QoS 1 round trip: peak", 0,
                    LoadSpec(ctx.broker.port, ["loop"], sizes.tasks, window=sizes.window, loopback=True))
    rate = sizes.measured.get("overhead", 400.0) / 2
    count = max(10, int(rate * sizes.latency_seconds))
    quiet = load_run(ctx, "baseline", f"paho QoS 1 round trip at {rate:.0f}/s", 0,
                     LoadSpec(ctx.broker.port, ["loop"], count, rate=rate, loopback=True))
    return [noop, noop_ours, loop, quiet]


@contextmanager
def fake_llm(ctx: Context, delay_s: float) -> Iterator[dict[str, str]]:
    directory = ctx.directory("fake-llm")
    child = Child("fake-llm", ["-m", "bench.fake_llm", str(delay_s)], directory / "fake-llm.log")
    try:
        server = child.result(30)
        ctx.extra_pids["fake-llm"] = child.pid
        yield {"url": str(server["url"]), "api_key": str(server["api_key"])}
    finally:
        ctx.extra_pids.pop("fake-llm", None)
        child.stop()


def fan_in(ctx: Context, sizes: Sizes) -> list[Row]:
    delay, in_flight = sizes.llm_delay_s, sizes.in_flight
    count = max(in_flight * 2, sizes.tasks // 2)
    concurrency = sizes.fan_in_threads or max(1, in_flight // FAN_IN_WORKERS)
    threads = f", {concurrency} threads per process" if sizes.fan_in_threads else ""
    rows = []
    with fake_llm(ctx, delay) as server:
        agents = _agents("fan")
        llm = {"provider": "anthropic", "model": "claude-sonnet-5-5", "base_url": server["url"],
               "api_key_env": "BENCH_ANTHROPIC_API_KEY", "max_retries": 0, "timeout_s": 30}
        with agent_stack(ctx, "fan-in", agents, FAN_IN_WORKERS, concurrency, llm,
                         env={"BENCH_ANTHROPIC_API_KEY": server["api_key"]}) as stack:
            run = f"fake Anthropic {delay:g} s, {in_flight} in flight{threads}"
            rows.append(load_run(ctx, "fan-in", run, FAN_IN_WORKERS,
                                 LoadSpec(ctx.broker.port, agents, count, window=in_flight), stack))
        rows.append(async_sdk_baseline(ctx, server, count, in_flight))
    agents = _agents("fan")
    echo = {**ECHO, "delay_s": delay}
    with agent_stack(ctx, "fan-in-echo", agents, FAN_IN_WORKERS, concurrency, echo) as stack:
        run = f"echo sleeping {delay:g} s (no HTTP), {in_flight} in flight{threads}"
        spec = LoadSpec(ctx.broker.port, agents, count, window=in_flight)
        rows.append(load_run(ctx, "fan-in", run, FAN_IN_WORKERS, spec, stack))
    return rows


def async_sdk_baseline(ctx: Context, server: dict[str, str], calls: int, in_flight: int) -> Row:
    """The same calls to the same fake from the bare async SDK, in as many processes as fan-in's workers."""
    directory = ctx.directory("fan-in-async-sdk")
    env = {**os.environ, "BENCH_ANTHROPIC_API_KEY": server["api_key"]}
    args = [server["url"], "BENCH_ANTHROPIC_API_KEY", str(calls // FAN_IN_WORKERS), str(in_flight // FAN_IN_WORKERS)]
    children = [Child(f"async-sdk-{n}", ["-m", "bench.async_baseline", *args], directory / f"async-sdk-{n}.log", env)
                for n in range(1, FAN_IN_WORKERS + 1)]
    try:
        for child in children:
            child.expect("ready", 30)
        results = [child.result(600) for child in children]
    finally:
        for child in children:
            child.stop()
    sent, answered = sum(r["calls"] for r in results), sum(r["answered"] for r in results)
    seconds = max(r["seconds"] for r in results)
    usage = [ProcessUsage(child.name, r["cpu_s"], 100 * r["cpu_s"] / r["seconds"], r["peak_rss_mb"])
             for child, r in zip(children, results, strict=True)]
    return Row("fan-in", f"bare async SDK, {in_flight} in flight", FAN_IN_WORKERS, sent, answered, sent - answered,
               0, 0, seconds, answered / seconds, {}, usage)


def pipeline(ctx: Context, sizes: Sizes) -> list[Row]:
    agents = _agents("a", "b", "c")
    chains = max(10, sizes.tasks // 4)
    with agent_stack(ctx, "pipeline", agents, sizes.workers, sizes.concurrency, ECHO) as stack:
        row = load_run(ctx, "pipeline", "3-agent chains: peak (chains/s)", sizes.workers,
                       LoadSpec(ctx.broker.port, agents, chains, window=sizes.window), stack)
    row.note = row.note or f"{3 * row.throughput:.0f} tasks/s counting every hop"
    return [row]


def scale(ctx: Context, sizes: Sizes) -> list[Row]:
    count = max(10, sizes.tasks // 4)
    rows = []
    for workers in sizes.scale:
        agents = _agents("s")
        with agent_stack(ctx, "scale", agents, workers, sizes.concurrency, ECHO) as stack:
            rows.append(load_run(ctx, "scale", "agent2389 peak", workers,
                                 LoadSpec(ctx.broker.port, agents, count, window=sizes.window), stack))
        rows.append(celery_run(ctx, "scale", workers, sizes.concurrency, count))
    return rows


def events(ctx: Context, sizes: Sizes) -> list[Row]:
    """What Celery's events (task, task-sent, worker heartbeats; Flower's source) cost: the overhead peak with
    them off, then on, one after the other on the same machine."""
    rows = []
    for state, flag in (("off", "0"), ("on", "1")):
        agents = _agents("e")
        with agent_stack(ctx, "events", agents, sizes.workers, sizes.concurrency, ECHO,
                         env={"AGENT2389_CELERY_EVENTS": flag}) as stack:
            rows.append(load_run(ctx, "events", f"peak, Celery events {state}", sizes.workers,
                                 LoadSpec(ctx.broker.port, agents, sizes.tasks, window=sizes.window), stack))
    return rows


def routing(ctx: Context, sizes: Sizes) -> list[Row]:
    """A v2 routing decision's own cost per hop, the LLM call left out (bench/routing.py)."""
    return routing_rows(ctx.redis_url, ctx.redis_pid, workflows=max(5, sizes.tasks // 100))


SCENARIOS: dict[str, Callable[[Context, Sizes], list[Row]]] = {
    "overhead": overhead, "baseline": baseline, "fan-in": fan_in, "pipeline": pipeline, "scale": scale,
    "events": events, "routing": routing,
}
