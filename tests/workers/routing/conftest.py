"""Routing through ``workers.processing.process`` with the real Redis, a registry double and a recording
publisher: what each delivery publishes, and what it leaves in the timeline and the stats."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from agent2389.config.agent import AgentConfig
from agent2389.state.keys import Keys
from agent2389.state.ledger import TaskLedger
from agent2389.state.stats import StatsRecorder
from fakes.anthropic_api import fake_anthropic  # noqa: F401 (the fixture)
from workers.llm.echo import EchoRunner
from workers.processing import Deps, process
from workers.routing import Router


@dataclass(frozen=True)
class Listed:
    """What the registry says about an agent (agent2389.state.registry.AgentRecord's routing fields)."""

    agent_id: str
    description: str = ""
    capabilities: tuple[str, ...] = ()
    load: float = 0.0


@dataclass
class Directory:
    agents: list[Listed] = field(default_factory=list)

    def routable(self) -> list[Listed]:
        return list(self.agents)


def agent(agent_id: str = "a", provider: str = "echo", **routing: Any) -> AgentConfig:
    return AgentConfig.model_validate({"agent": {"id": agent_id}, "llm": {"provider": provider},
                                       "routing": routing or None})


def v2_task(agent_id: str = "a", **overrides: Any) -> dict[str, Any]:
    return {"task_id": str(uuid.uuid4()), "conversation_id": "c", "topic": f"/control/agents/{agent_id}/input",
            "instruction": "say", "input": "hi", "next": None, "version": "2.0", **overrides}


@dataclass
class ProgressSink:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def emit(self, topic: str, payload: str) -> None:
        self.events.append((topic, json.loads(payload)))

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event["event_type"] == event_type]


@dataclass
class Bench:
    """One routing agent's worker, minus Celery: ``run`` processes a delivery and returns what it published."""

    redis: redis.Redis
    keys: Keys
    directory: Directory
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    progress: ProgressSink = field(default_factory=ProgressSink)

    def run(self, config: AgentConfig, wire: dict[str, Any], runner: Any = None) -> list[tuple[str, dict[str, Any]]]:
        before = len(self.sent)
        stats = StatsRecorder(self.redis, self.keys)
        router = Router(self.directory, stats)
        deps = Deps(TaskLedger(self.redis, self.keys), stats, {config.id: runner or EchoRunner(config)}, self.publish,
                    [], progress=self.progress, router=router)
        try:
            process(config, wire, deps)
        finally:
            router.close()
        return self.sent[before:]

    def publish(self, topic: str, payload: str) -> None:
        self.sent.append((topic, json.loads(payload)))

    def timeline(self, task_id: str, event: str) -> list[dict[str, Any]]:
        entries = [json.loads(e) for e in self.redis.lrange(self.keys.task_timeline(task_id), 0, -1)]
        return [e for e in entries if e["event"] == event]

    def stats(self, agent_id: str) -> dict[str, str]:
        return self.redis.hgetall(self.keys.agent_stats(agent_id))


@pytest.fixture
def bench(redis_client: redis.Redis, key_prefix: str) -> Bench:
    return Bench(redis_client, Keys(key_prefix), Directory([Listed("b", "writes"), Listed("c", "reviews")]))


Run = Callable[[AgentConfig, dict[str, Any]], list[tuple[str, dict[str, Any]]]]
