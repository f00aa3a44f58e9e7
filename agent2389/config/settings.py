"""Process settings from the environment, read once at start-up and passed in (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent2389.config.agent import AgentConfig
from agent2389.config.files import load_agents
from agent2389.protocol.errors import ConfigError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


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
        protocol = env.get("AGENT2389_MQTT_PROTOCOL")
        if protocol:
            agents = tuple(_with_protocol(agent, protocol) for agent in agents)
        try:
            return cls(
                agents=agents,
                redis_url=env.get("REDIS_URL", DEFAULT_REDIS_URL),
                key_prefix=env.get("AGENT2389_KEY_PREFIX", "agent2389"),
                log_format=env.get("LOG_FORMAT", "json"),
                log_level=env.get("LOG_LEVEL", "INFO").upper(),
                web_port=int(env.get("HEALTH_PORT", "8080")),
                web_auth_token=env.get("WEB_AUTH_TOKEN") or None,
                visibility_timeout_s=int(env.get("AGENT2389_VISIBILITY_TIMEOUT", "30")),
                reverify_s=float(env.get("AGENT2389_REVERIFY_INTERVAL", "30")),
                celery_events=_flag(env, "AGENT2389_CELERY_EVENTS", default=True),
                status_heartbeat_s=_seconds_in_range(float(env.get("AGENT2389_STATUS_HEARTBEAT", "30")),
                                             "AGENT2389_STATUS_HEARTBEAT"),
                progress_events=_flag(env, "AGENT2389_PROGRESS_EVENTS", default=True),
            )
        except ValueError as exc:
            raise ConfigError(f"bad number in environment: {exc}") from None

    def agent(self, agent_id: str) -> AgentConfig:
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        raise ConfigError(f"no agent {agent_id!r} in the configuration")

    def only(self, agent_ids: list[str]) -> Settings:
        return replace(self, agents=tuple(self.agent(agent_id) for agent_id in agent_ids))

    def secret_env_names(self) -> set[str]:
        return {name for agent in self.agents for name in agent.referenced_env_vars()}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
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
