"""The web tests' vocabulary: a system recorded into the real Redis the way bridge and workers do it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import web.app
from agent2389.config.agent import AgentConfig
from agent2389.config.settings import Settings
from agent2389.state.keys import Keys
from agent2389.state.presence import BridgeState, Presence, WorkerInfo, write_bridge_state
from agent2389.state.registry import AgentRegistry
from agent2389.state.stats import StatsRecorder
from agent2389.state.timeline import TaskEvent
from web.app import create_app, make_server, stop_server

AGENTS = ("echo", "writer")


def agent_config(agent_id: str, tools: tuple[str, ...] = ()) -> AgentConfig:
    return AgentConfig.model_validate(
        {"agent": {"id": agent_id}, "llm": {"provider": "echo"}, "tools": {name: "builtin" for name in tools}}
    )


class System:
    """Writes what the bridge and the workers write, through their own recorders."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        # The tasks it starts are run by worker w1 (System.worker("w1")): in progress while w1 beats.
        self.stats = StatsRecorder(client, keys, owner="w1")
        self.presence = Presence(client, keys, ttl_s=10.0)
        self._stopped = threading.Event()
        self._beaters: list[threading.Thread] = []

    def bridge(self, connected: bool = True, subscribed: bool = True, agents: tuple[str, ...] = AGENTS,
               **fields: object) -> BridgeState:
        now = time.time()
        state = BridgeState(
            bridge_id="bridge-1", connected=connected, subscribed=subscribed, connection_attempts=3,
            connections_established=2, connection_failures=1, messages_received=12,
            connected_since=now - 90 if connected else None, started_at=now - 120,
            agents={a: {"status": "available" if connected else "unavailable", "reason": "", "since": now}
                    for a in agents},
        )
        for name, value in fields.items():
            setattr(state, name, value)
        write_bridge_state(self.client, self.keys, state, ttl_s=30)
        return state

    def worker(self, worker_id: str, agents: tuple[str, ...] = AGENTS, active: int = 0, processed: int = 0,
               not_ready: dict[str, str] | None = None, age_s: float = 0.0, llm_waiting: int = 0) -> WorkerInfo:
        info = WorkerInfo(worker_id=worker_id, host=f"host-{worker_id}", pid=1000 + len(worker_id), agents=list(agents),
                          concurrency=4, started_at=time.time() - 60, active=active, processed=processed,
                          not_ready=not_ready or {}, llm_waiting=llm_waiting)
        self.presence.heartbeat(info)
        if age_s:
            info.last_heartbeat = time.time() - age_s
            self.client.set(self.keys.worker(worker_id), json.dumps(asdict(info)))
        return info

    def beating(self, worker_id: str) -> None:
        """A worker that keeps beating, as a live one does, until the test ends: for a test that can outlast
        the heartbeat's 10 s on a loaded machine."""
        self.worker(worker_id)
        beater = threading.Thread(target=self._beat, args=(worker_id,), daemon=True)
        beater.start()
        self._beaters.append(beater)

    def stop(self) -> None:
        """Ends the beating before the Redis client it writes with is closed."""
        self._stopped.set()
        for beater in self._beaters:
            beater.join(5)

    def _beat(self, worker_id: str) -> None:
        while not self._stopped.wait(1.0):
            self.worker(worker_id)

    def task(self, agent: str, task_id: str, seconds: float, error_code: str | None = None,
             conversation: str = "conv-1", tools: tuple[tuple[str, str], ...] = (),
             model: str | None = None) -> None:
        """A task's whole life: received and queued by the bridge, run and answered by a worker."""
        self.stats.task_received(agent)
        self.stats.task_event(task_id, agent, TaskEvent.QUEUED, conversation_id=conversation)
        self.stats.task_started(agent, task_id, conversation, 1)
        if model:
            self.stats.llm_call(agent, model, seconds / 2, 100, 40, error_code != "llm_error", task_id=task_id)
        for tool, outcome in tools:
            self.stats.tool_call(agent, tool, seconds / 4, outcome, task_id=task_id)
        self.stats.task_finished(agent, task_id, seconds, error_code,
                                 message="the model is overloaded" if error_code else None)

    def queue(self, agent: str, waiting: int) -> None:
        self.client.rpush(self.keys.queue(agent), *[f"message-{i}" for i in range(waiting)])

    def status(self, agent_id: str, state: str = "available", expiry_s: int | None = None, ours: bool = False,
               **extra: object) -> None:
        """A status on ``/control/agents/{agent_id}/status``, as the bridge's watcher records it (``ours``: an
        agent a bridge of this deployment claims)."""
        registry = AgentRegistry(self.client, self.keys)
        if ours:
            registry.claim([agent_id])
        properties = None
        if expiry_s is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = expiry_s
        body = {"agent_id": agent_id, "status": state, "timestamp": "2026-01-01T00:00:00Z", **extra}
        registry.observe(f"/control/agents/{agent_id}/status", json.dumps(body).encode(), properties)

    def registry_garbage(self) -> None:
        """A payload on a status topic that is no status."""
        AgentRegistry(self.client, self.keys).observe("/control/agents/noise/status", b"not a status")

    def healthy(self) -> None:
        self.bridge()
        self.worker("w1")


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    return Settings(agents=tuple(agent_config(a, ("http_request",)) for a in AGENTS), redis_url=redis_url,
                    key_prefix=key_prefix)


@pytest.fixture
def system(redis_client: redis.Redis, keys: Keys) -> Iterator[System]:
    system = System(redis_client, keys)
    yield system
    system.stop()


def web_app(settings: Settings, token: str | None = None) -> Iterator[Flask]:
    """The web app (requiring ``token`` on inspection endpoints when given), closed afterwards."""
    if token is not None:
        settings = Settings(agents=settings.agents, redis_url=settings.redis_url, key_prefix=settings.key_prefix,
                            web_auth_token=token)
    application = create_app(settings)
    yield application
    application.extensions["agent2389"].client.close()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    yield from web_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def served(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The web app served by waitress on a loopback port, as ``agent2389 web`` serves it."""
    made: list[Flask] = []

    def recording_create_app(settings: Settings, client: redis.Redis | None = None) -> Flask:
        made.append(create_app(settings, client))
        return made[-1]

    monkeypatch.setattr(web.app, "create_app", recording_create_app)
    server = make_server(settings, 0, host="127.0.0.1")  # the kernel's free port: no race with other tests
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    stop_server(server)
    thread.join(timeout=5)
    for application in made:  # its Redis connections, before garbage collection warns about them
        application.extensions["agent2389"].client.close()
