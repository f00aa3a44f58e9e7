"""One consistent read of everything bridge and workers recorded in Redis, taken per request.

The web app keeps no state of its own: every number it shows is read here, a few pipelined round
trips per request, so it adds up any number of replicas and survives a restart of any of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agent2389.config.settings import Settings
from agent2389.state.keys import Keys, queue_name
from agent2389.state.presence import BridgeState, Presence, WorkerInfo
from agent2389.state.registry import AgentRecord as RegisteredAgent
from agent2389.state.registry import AgentRegistry
from agent2389.state.stats import IN_FLIGHT_STALE_S
from web.usage import read_windows

THROUGHPUT_MINUTES = 15


def connect(settings: Settings) -> redis.Redis:
    """A client that gives up fast: a health check must report a dead Redis, not wait for it."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=10,
        decode_responses=True,
    )


@dataclass
class AgentRecord:
    agent_id: str
    stats: dict[str, str] = field(default_factory=dict)
    durations_ms: list[float] = field(default_factory=list)
    histogram: dict[str, int] = field(default_factory=dict)
    tools: dict[str, dict[str, str]] = field(default_factory=dict)
    models: dict[str, dict[str, str]] = field(default_factory=dict)
    queue_length: int = 0
    in_flight: int = 0
    # unix minute -> {"completed": n, "failed": n}
    minutes: dict[int, dict[str, int]] = field(default_factory=dict)
    # LLM usage of the last "hour" and "day" (web.usage.read_windows)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)

    def count(self, name: str) -> int:
        return int(float(self.stats.get(name, 0) or 0))

    def number(self, name: str) -> float:
        return float(self.stats.get(name, 0) or 0)

    @property
    def queue(self) -> str:
        return queue_name(self.agent_id)


@dataclass
class Snapshot:
    taken_at: float
    agents: dict[str, AgentRecord]
    # The agents that should be served: the configured ones, else those the bridge or workers report.
    expected_agents: list[str]
    workers: list[WorkerInfo]
    worker_ttl_s: float
    bridge: BridgeState | None
    bridge_problem: str | None
    mqtt: dict[str, int]
    system: dict[str, str]
    # process name -> how often ``agent2389 up`` restarted it (empty outside ``up``)
    restarts: dict[str, int] = field(default_factory=dict)
    # every agent seen on the broker, ours and foreign (PROTOCOL.md §8), and the non-statuses ignored
    registry: list[RegisteredAgent] = field(default_factory=list)
    registry_ignored: int = 0

    def live_workers(self) -> list[WorkerInfo]:
        return [w for w in self.workers if w.last_heartbeat >= self.taken_at - self.worker_ttl_s]

    def is_online(self, worker: WorkerInfo) -> bool:
        return worker.last_heartbeat >= self.taken_at - self.worker_ttl_s


def read_snapshot(client: redis.Redis, settings: Settings, now: float | None = None) -> Snapshot:
    """Everything at once; raises ``redis.RedisError`` when Redis does not answer."""
    keys = Keys(settings.key_prefix)
    taken_at = time.time() if now is None else now
    workers = Presence(client, keys, ttl_s=settings.worker_ttl_s).workers(include_offline=True)
    registry, registry_ignored = AgentRegistry(client, keys).read()

    pipe = client.pipeline(transaction=False)
    pipe.smembers(keys.agents_index())
    pipe.get(keys.bridge())
    pipe.hgetall(keys.mqtt_stats())
    pipe.hgetall(keys.system_stats())
    pipe.zrangebyscore(keys.in_flight(), taken_at - IN_FLIGHT_STALE_S, "+inf")
    pipe.hgetall(keys.process_restarts())
    pipe.hgetall(keys.in_flight_owners())
    indexed, bridge_raw, mqtt, system, in_flight, restarts, owners = pipe.execute()

    bridge, bridge_problem = _parse_bridge(bridge_raw)
    configured = [agent.id for agent in settings.agents]
    reported = sorted(set(bridge.agents if bridge else []) | {a for w in workers for a in w.agents})
    expected = configured or reported
    agent_ids = sorted(set(configured) | set(reported) | set(indexed))
    tools_configured = {agent.id: list(agent.tools) for agent in settings.agents}
    agents = _read_agents(client, keys, agent_ids, tools_configured, taken_at)
    # A task whose worker stopped beating is not in progress any more: it waits for the visibility
    # timeout to hand it to another worker. Two missed heartbeats are enough to say so.
    beating = {w.worker_id for w in workers if w.last_heartbeat >= taken_at - 2.5 * settings.worker_heartbeat_s}
    for member in in_flight:
        agent_id = member.partition(":")[0]
        owner = owners.get(member)
        if agent_id in agents and (owner is None or owner in beating):
            agents[agent_id].in_flight += 1
    return Snapshot(
        taken_at=taken_at,
        agents=agents,
        expected_agents=expected,
        workers=workers,
        worker_ttl_s=settings.worker_ttl_s,
        bridge=bridge,
        bridge_problem=bridge_problem,
        mqtt={name: int(float(value)) for name, value in mqtt.items()},
        system=system,
        restarts={name: int(count) for name, count in sorted(restarts.items())},
        registry=registry,
        registry_ignored=registry_ignored,
    )


def _parse_bridge(raw: str | None) -> tuple[BridgeState | None, str | None]:
    if raw is None:
        return None, None
    try:
        data = json.loads(raw)
        known = set(BridgeState.__dataclass_fields__)
        return BridgeState(**{k: v for k, v in data.items() if k in known}), None
    except (ValueError, TypeError) as exc:
        return None, f"the bridge's report is unreadable ({type(exc).__name__})"


def _read_agents(client: redis.Redis, keys: Keys, agent_ids: Sequence[str],
                 tools_configured: dict[str, list[str]], now: float) -> dict[str, AgentRecord]:
    minutes = [int(now // 60) - back for back in range(THROUGHPUT_MINUTES)]
    pipe = client.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hgetall(keys.agent_stats(agent_id))
        pipe.lrange(keys.durations(agent_id), 0, -1)
        pipe.hgetall(keys.histogram(agent_id))
        pipe.smembers(keys.tools_index(agent_id))
        pipe.smembers(keys.models_index(agent_id))
        for queue_list in keys.queue_lists(agent_id):
            pipe.llen(queue_list)
        for minute in minutes:
            pipe.hgetall(keys.minute_stats(agent_id, minute))
    replies = iter(pipe.execute())

    agents: dict[str, AgentRecord] = {}
    for agent_id in agent_ids:
        record = AgentRecord(agent_id, stats=next(replies))
        record.durations_ms = [float(v) for v in next(replies)]
        record.histogram = {label: int(count) for label, count in next(replies).items()}
        tools = sorted(set(next(replies)) | set(tools_configured.get(agent_id, [])))
        models = sorted(next(replies))
        record.queue_length = sum(int(next(replies)) for _ in keys.queue_lists(agent_id))
        for minute in minutes:
            counts = next(replies)
            if counts:
                record.minutes[minute] = {name: int(value) for name, value in counts.items()}
        record.tools = {tool: {} for tool in tools}
        record.models = {model: {} for model in models}
        agents[agent_id] = record
    _read_hashes(client, [(r.tools, lambda t, a=r.agent_id: keys.tool_stats(a, t)) for r in agents.values()])
    _read_hashes(client, [(r.models, lambda m, a=r.agent_id: keys.llm_stats(a, m)) for r in agents.values()])
    for agent_id, windows in read_windows(client, keys, agent_ids, now).items():
        agents[agent_id].usage = windows
    return agents


def _read_hashes(client: redis.Redis, targets: Iterable[tuple[dict[str, dict[str, str]], Any]]) -> None:
    """Fill each ``{name: {}}`` map with the hash at ``key_for(name)``, in one round trip."""
    slots: list[tuple[dict[str, dict[str, str]], str]] = []
    pipe = client.pipeline(transaction=False)
    for mapping, key_for in targets:
        for name in mapping:
            pipe.hgetall(key_for(name))
            slots.append((mapping, name))
    if not slots:
        return
    for (mapping, name), value in zip(slots, pipe.execute(), strict=True):
        mapping[name] = value
