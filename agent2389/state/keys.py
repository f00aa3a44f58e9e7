"""Every Redis key agent2389 writes, in one place, under one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

from agent2389.transport.layout import priority_lists


@dataclass(frozen=True)
class Keys:
    prefix: str = "agent2389"

    def ledger(self, fingerprint: str) -> str:
        return f"{self.prefix}:ledger:{fingerprint}"

    def outbox(self, fingerprint: str) -> str:
        return f"{self.prefix}:outbox:{fingerprint}"

    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def bridge(self) -> str:
        return f"{self.prefix}:bridge"

    def process_restarts(self) -> str:
        """Hash: process name (``worker-2``, ``bridge``, ``web``) -> how often ``agent2389 up`` restarted it."""
        return f"{self.prefix}:up:restarts"

    def agent_stats(self, agent_id: str) -> str:
        return f"{self.prefix}:stats:agent:{agent_id}"

    def durations(self, agent_id: str) -> str:
        return f"{self.prefix}:stats:durations:{agent_id}"

    def histogram(self, agent_id: str) -> str:
        return f"{self.prefix}:stats:histogram:{agent_id}"

    def tool_stats(self, agent_id: str, tool: str) -> str:
        return f"{self.prefix}:stats:tool:{agent_id}:{tool}"

    def llm_stats(self, agent_id: str, model: str) -> str:
        return f"{self.prefix}:stats:llm:{agent_id}:{model}"

    def mqtt_stats(self) -> str:
        return f"{self.prefix}:stats:mqtt"

    def agents_index(self) -> str:
        """Every agent id that has recorded stats, so readers never SCAN the keyspace."""
        return f"{self.prefix}:stats:agents"

    def tools_index(self, agent_id: str) -> str:
        return f"{self.prefix}:stats:tools:{agent_id}"

    def models_index(self, agent_id: str) -> str:
        return f"{self.prefix}:stats:models:{agent_id}"

    def in_flight(self) -> str:
        """Sorted set of ``agent_id:task_id`` being processed now, scored by start time."""
        return f"{self.prefix}:stats:inflight"

    def in_flight_owners(self) -> str:
        """Hash: in-flight member -> the worker id running it, so a dead worker's tasks stop counting."""
        return f"{self.prefix}:stats:inflight:owners"

    def system_stats(self) -> str:
        return f"{self.prefix}:stats:system"

    def minute_stats(self, agent_id: str, minute: int) -> str:
        """Tasks finished by ``agent_id`` in one minute (unix time // 60), for recent throughput."""
        return f"{self.prefix}:stats:minute:{agent_id}:{minute}"

    def llm_usage_window(self, agent_id: str, window: str, bucket: int) -> str:
        """Tokens and cost of one agent in one bucket of a usage window (agent2389.state.usage.WINDOWS)."""
        return f"{self.prefix}:stats:llmusage:{agent_id}:{window}:{bucket}"

    def llm_limit(self, scope: str, part: str) -> str:
        """The fleet-wide LLM limiter's keys (workers/llm/limiter.py) of one agent or API key."""
        return f"{self.prefix}:llmlimit:{scope}:{part}"

    def llm_daily_tokens(self, agent_id: str, day: str) -> str:
        """Tokens one agent used on one UTC day (YYYY-MM-DD), for ``[llm] daily_token_budget``."""
        return f"{self.prefix}:llmbudget:{agent_id}:{day}"

    def task_timeline(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    def recent_tasks(self) -> str:
        return f"{self.prefix}:tasks:recent"

    def agent_verification(self, agent_id: str) -> str:
        return f"{self.prefix}:agent:{agent_id}:verified"

    def registry(self) -> str:
        """Hash: agent id -> its latest status as the agent registry keeps it (agent2389.state.registry)."""
        return f"{self.prefix}:registry:agents"

    def registry_own(self) -> str:
        """Sorted set of this deployment's agent ids, scored by when a bridge last claimed them."""
        return f"{self.prefix}:registry:own"

    def registry_ignored(self) -> str:
        """How many payloads on status topics were not statuses (and were ignored)."""
        return f"{self.prefix}:registry:ignored"

    def celery_prefix(self) -> str:
        """Celery's own keys (queues, unacked messages) live under this, via kombu's global_keyprefix."""
        return f"{self.prefix}:celery:"

    def queue(self, agent_id: str) -> str:
        """The Redis list that holds an agent's waiting tasks (its length is the queue depth)."""
        return f"{self.celery_prefix()}{queue_name(agent_id)}"

    def queue_lists(self, agent_id: str) -> list[str]:
        """Every list kombu may hold the agent's waiting tasks in: one per priority step."""
        return priority_lists(self.queue(agent_id))


def queue_name(agent_id: str) -> str:
    return f"agent.{agent_id}"

