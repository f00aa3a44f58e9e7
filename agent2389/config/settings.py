"""Process settings from the environment, read once at start-up and passed in (never at import)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from agent2389.config import environment
from agent2389.config.agent import AgentConfig
from agent2389.config.files import load_agents
from agent2389.protocol.errors import ConfigError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Settings:
    """Everything a process needs: the agents it serves and how to reach the shared services."""

    agents: tuple[AgentConfig, ...] = ()
    redis_url: str = DEFAULT_REDIS_URL
    key_prefix: str = "agent2389"
    log_format: str = "json"
    log_level: str = "INFO"
    web_port: int = 8080
    web_auth_token: str | None = field(default=None, repr=False)
    # Seconds a task may stay unacknowledged before a live worker hands it to another; workers renew
    # the lease of what they hold, so this only bounds recovery after a worker dies.
    visibility_timeout_s: int = 30
    dedup_ttl_s: int = 24 * 3600
    worker_heartbeat_s: float = 2.0
    worker_ttl_s: float = 10.0
    publish_timeout_s: float = 30.0
    # How often a worker tries again to verify an agent it could not verify (its LLM or a tool was down).
    reverify_s: float = 30.0
    # Celery task events, task-sent events and worker heartbeats, for Flower and `celery events`.
    celery_events: bool = True
    # How often each agent's status is re-published even when nothing changed (PROTOCOL.md §8); it
    # expires after three of these, so a deployment that vanished stops being advertised.
    status_heartbeat_s: float = 30.0
    # Progress events (PROTOCOL.md §10) on /control/agents/{id}/progress: best effort, QoS 0.
    progress_events: bool = True

    @classmethod
    def from_env(cls, config_path: str | Path | None, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        agents = tuple(load_agents(config_path)) if config_path is not None else ()
        protocol = environment.value(environment.MQTT_PROTOCOL, "", env)
        if protocol:
            agents = tuple(_with_protocol(agent, protocol) for agent in agents)
        return cls(
            agents=agents,
            redis_url=environment.value(environment.REDIS_URL, DEFAULT_REDIS_URL, env),
            key_prefix=environment.value(environment.KEY_PREFIX, "agent2389", env),
            log_format=_choice(env, environment.LOG_FORMAT, environment.LOG_FORMATS, "json"),
            log_level=_choice(env, environment.LOG_LEVEL, environment.LOG_LEVELS, "INFO"),
            web_port=_number(env, environment.WEB_PORT, 8080, int),
            web_auth_token=environment.value(environment.WEB_AUTH_TOKEN, "", env) or None,
            visibility_timeout_s=_number(env, environment.VISIBILITY_TIMEOUT, 30, int),
            reverify_s=_number(env, environment.REVERIFY_INTERVAL, 30.0, float),
            celery_events=_flag(env, environment.CELERY_EVENTS, default=True),
            status_heartbeat_s=_seconds_in_range(
                _number(env, environment.STATUS_HEARTBEAT, 30.0, float), environment.STATUS_HEARTBEAT),
            progress_events=_flag(env, environment.PROGRESS_EVENTS, default=True),
        )

    def agent(self, agent_id: str) -> AgentConfig:
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        raise ConfigError(f"no agent {agent_id!r} in the configuration")

    def only(self, agent_ids: list[str]) -> Settings:
        return replace(self, agents=tuple(self.agent(agent_id) for agent_id in agent_ids))

    def secret_env_names(self) -> set[str]:
        return {name for agent in self.agents for name in agent.referenced_env_vars()}


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of ``allowed`` (in any case); another value is an error, never a silent fall back to the default."""
    found = environment.lookup(name, env)
    if found is None:
        return default
    variable, raw = found
    for option in allowed:
        if raw.strip().lower() == option.lower():
            return option
    raise ConfigError(f"{variable} must be one of {', '.join(allowed)}, not {raw!r}")


def _number(env: Mapping[str, str], name: str, default: N, kind: Callable[[str], N]) -> N:
    found = environment.lookup(name, env)
    if found is None:
        return default
    variable, raw = found
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"bad number in environment: {variable} must be {what}, not {raw!r}") from None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = environment.value(name, "", env).strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {value!r}")


def _seconds_in_range(value: float, name: str) -> float:
    if not 1 <= value <= 86400:
        raise ConfigError(f"{name} must be between 1 and 86400 seconds, not {value:g}")
    return value


def _with_protocol(agent: AgentConfig, protocol: str) -> AgentConfig:
    """The agent with its MQTT protocol overridden (``up`` needs this with an MQTT 3.1.1-only broker)."""
    if protocol not in ("5", "3.1.1"):
        raise ConfigError(f"AGENT2389_MQTT_PROTOCOL must be 5 or 3.1.1, not {protocol!r}")
    return agent.model_copy(update={"mqtt": agent.mqtt.model_copy(update={"protocol": protocol})})
