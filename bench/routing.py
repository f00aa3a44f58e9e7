"""``python -m bench routing``: what a v2 routing decision itself costs per hop, without the LLM call.

The worker's routing step (workers/routing/router.py) runs in this process exactly as a worker runs it:
the registry read from the real Redis (every agent's status, ours and foreign), the allow-list, the
decision, the forwarded envelope with its context and trace, its size check, and the stats and timeline
records (written by the same background thread a worker uses). The decision is the ``echo`` rule, which
stands where the ``llm`` strategy's model call or the gatekeeper's HTTP call would be: those are the
model's or the service's time, not ours. Workflows of ``HOPS`` hops are routed hop by hop; each hop's
envelope is prepared before the timed loop, so parsing it (the bridge's and worker's §5 work) is not
counted. CPU is this process's (all threads: the stats writer included); Redis's own CPU is reported
apart. The registry is read as a worker reads it (``ROUTABLE_MAX_AGE_S``: at most once a second), with
registries of growing size; a last run with the largest registry read at every hop shows what that
read would cost without it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass

import redis

from agent2389.config.agent import AgentConfig
from agent2389.protocol.envelope import TaskEnvelope
from agent2389.state.keys import Keys
from agent2389.state.registry import AgentRegistry
from agent2389.state.stats import StatsRecorder
from bench.load import percentile
from bench.procstats import ProcessUsage, cpu_seconds, peak_rss_mb
from bench.report import Row
from bench.services import delete_keys
from workers.routing.router import Router
from workers.runtime import ROUTABLE_MAX_AGE_S

HOPS = 5
GOAL_CPU_MS = 5.0
REGISTRY_SIZES = (10, 100, 1000)
OUTPUT = "x" * 2000  # an agent's output of a typical size: it travels in the forwarded envelope


@dataclass(frozen=True)
class Hop:
    agent: AgentConfig
    envelope: TaskEnvelope


def chain_agents(run: str) -> list[AgentConfig]:
    ids = [f"bench-route{n}-{run}" for n in range(HOPS + 1)]
    return [AgentConfig.model_validate({
        "agent": {"id": agent_id, "description": f"hop {n}", "capabilities": ["bench"]},
        "llm": {"provider": "echo", "model": "echo"},
        "routing": {"strategy": "llm", "max_iterations": HOPS + 2, "allow": ids},
    }) for n, agent_id in enumerate(ids)]


def fill_registry(registry: AgentRegistry, ids: list[str], size: int, run: str) -> None:
    """``size`` available agents: the chain's and others (the fleet a real registry would list)."""
    others = [f"bench-other{n}-{run}" for n in range(max(0, size - len(ids)))]
    for agent_id in [*ids, *others]:
        status = {"agent_id": agent_id, "status": "available", "timestamp": "2026-01-01T00:00:00Z",
                  "description": f"agent {agent_id}", "capabilities": ["bench", "routing"], "load": 0.1,
                  "workers": 1}
        registry.observe(f"/control/agents/{agent_id}/status", json.dumps(status).encode(),
                         fallback_expiry_s=3600)


def first_envelope(entry: str, n: int) -> TaskEnvelope:
    return TaskEnvelope.model_validate({
        "task_id": str(uuid.uuid4()), "conversation_id": f"bench-routing-{n}",
        "topic": f"/control/agents/{entry}/input", "instruction": "research", "input": {"text": f"question {n}"},
        "next": None, "version": "2.0"})


def prepared_hops(router: Router, agents: list[AgentConfig], workflows: int) -> list[Hop]:
    """Every hop of ``workflows`` workflows, each with the envelope its agent receives (routed once untimed)."""
    hops = []
    for n in range(workflows):
        envelope = first_envelope(agents[0].agent.id, n)
        for agent in agents:
            hops.append(Hop(agent, envelope))
            routed = router.route(agent, envelope, OUTPUT)
            wire = json.loads(routed.payload)
            if "response" in wire:
                break  # the completion: the last hop
            envelope = TaskEnvelope.model_validate(wire)
    return hops


def measure(redis_url: str, client: redis.Redis, redis_pid: int | None, size: int, workflows: int,
            every_hop: bool = False) -> Row:
    run = uuid.uuid4().hex[:6]
    prefix = f"agent2389-bench-routing-{run}"
    keys = Keys(prefix)
    stats = StatsRecorder(client, keys, background=True, owner="bench")
    registry = AgentRegistry(client, keys)
    agents = chain_agents(run)
    fill_registry(registry, [a.agent.id for a in agents], size, run)
    router = Router(registry if every_hop else AgentRegistry(client, keys, max_age_s=ROUTABLE_MAX_AGE_S), stats)
    try:
        hops = prepared_hops(router, agents, workflows)
        stats.flush(30)
        walls: list[float] = []
        redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
        cpu_before, started = time.process_time(), time.perf_counter()
        for hop in hops:
            begun = time.perf_counter()
            router.route(hop.agent, hop.envelope, OUTPUT)
            walls.append((time.perf_counter() - begun) * 1000)
        stats.flush(60)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_before
        redis_cpu_s = (cpu_seconds(redis_pid) - redis_before) if redis_pid else 0.0
    finally:
        router.close()
        delete_keys(redis_url, prefix)
    per_hop_ms = cpu_s * 1000 / len(hops)
    usage = [ProcessUsage("bench", cpu_s, 100 * cpu_s / seconds, peak_rss_mb(os.getpid()))]
    if redis_pid:
        usage.append(ProcessUsage("redis", redis_cpu_s, 100 * redis_cpu_s / seconds, peak_rss_mb(redis_pid)))
    note = (f"{per_hop_ms:.2f} ms CPU per hop (+ Redis {redis_cpu_s * 1000 / len(hops):.2f} ms); "
            f"goal <= {GOAL_CPU_MS:g} ms")
    walls.sort()
    latency = {name: percentile(walls, q) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
    run_name = f"echo decision, {size} agents in the registry" + (" read at every hop" if every_hop else "")
    return Row("routing", run_name, 0, len(hops), len(hops), 0, 0, 0,
               seconds, len(hops) / seconds, latency, usage, note)


def routing_rows(redis_url: str, redis_pid: int | None, workflows: int) -> list[Row]:
    client = redis.Redis.from_url(redis_url)
    try:
        rows = [measure(redis_url, client, redis_pid, size, workflows) for size in REGISTRY_SIZES]
        return [*rows, measure(redis_url, client, redis_pid, REGISTRY_SIZES[-1], workflows, every_hop=True)]
    finally:
        client.close()
