"""The Prometheus view of the system: a collector that reads Redis at scrape time.

Names follow Prometheus conventions: one ``agent2389_`` prefix, base units, counters end in
``_total``, labels are agent, tool, model, reason or code (small, bounded sets), never a task id.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from agent2389.state.presence import process_usage
from agent2389.state.stats import DURATION_BUCKETS
from web.discovery import registry_families
from web.routing_metrics import routing_families
from web.snapshot import AgentRecord, Snapshot

Metric = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily | SummaryMetricFamily


class SystemCollector(Collector):
    """Collects from one fresh snapshot per scrape; a dead Redis yields ``agent2389_redis_up 0``."""

    def __init__(self, read_snapshot: Callable[[], Snapshot]) -> None:
        self._read = read_snapshot

    def describe(self) -> list[Metric]:
        # Nothing to declare up front: registering must not read Redis.
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("agent2389_redis_up", "1 when Redis answered this scrape, else 0")
        try:
            snapshot = self._read()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from task_families(snapshot)
        yield from presence_families(snapshot)
        yield from process_families(snapshot)
        yield from mqtt_families(snapshot)
        yield from tool_families(snapshot)
        yield from llm_families(snapshot)
        yield from routing_families(snapshot)
        yield from registry_families(snapshot)


def _per_agent(records: list[AgentRecord], kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str,
               doc: str, value: Callable[[AgentRecord], float]) -> Metric:
    family = kind(name, doc, labels=["agent"])
    for record in records:
        family.add_metric([record.agent_id], value(record))
    return family


def task_families(snapshot: Snapshot) -> Iterator[Metric]:
    records = list(snapshot.agents.values())
    yield _per_agent(records, CounterMetricFamily, "agent2389_tasks_received", "Task messages the bridge took in",
                     lambda r: r.count("tasks_received"))
    yield _per_agent(records, CounterMetricFamily, "agent2389_tasks_completed", "Tasks answered successfully",
                     lambda r: r.count("tasks_completed"))
    yield _per_agent(records, CounterMetricFamily, "agent2389_tasks_failed", "Tasks answered with an error",
                     lambda r: r.count("tasks_failed"))
    yield _per_agent(records, CounterMetricFamily, "agent2389_tasks_dropped",
                     "Task messages the bridge dropped on an unexpected failure of its own",
                     lambda r: r.count("tasks_dropped"))
    yield _per_agent(records, GaugeMetricFamily, "agent2389_tasks_in_progress", "Tasks being processed now",
                     lambda r: r.in_flight)
    yield _per_agent(records, GaugeMetricFamily, "agent2389_queue_length", "Tasks waiting in the agent's queue",
                     lambda r: r.queue_length)
    rejected = CounterMetricFamily("agent2389_tasks_rejected", "Messages refused before queueing, by reason",
                                   labels=["agent", "reason"])
    errors = CounterMetricFamily("agent2389_task_errors", "Failed tasks by protocol error code",
                                 labels=["agent", "code"])
    histogram = HistogramMetricFamily("agent2389_task_duration_seconds", "Time from start to answer of a task",
                                      labels=["agent"])
    for record in records:
        for field, value in sorted(record.stats.items()):
            if field.startswith("rejected_"):
                rejected.add_metric([record.agent_id, field.removeprefix("rejected_")], float(value))
            elif field.startswith("failed_"):
                errors.add_metric([record.agent_id, field.removeprefix("failed_")], float(value))
        histogram.add_metric([record.agent_id], _buckets(record), record.number("duration_seconds_sum"))
    yield rejected
    yield errors
    yield histogram


def _buckets(record: AgentRecord) -> list[tuple[str, float]]:
    cumulative, buckets = 0, []
    for bound in DURATION_BUCKETS:
        cumulative += record.histogram.get(str(bound), 0)
        buckets.append((str(bound), float(cumulative)))
    buckets.append(("+Inf", float(cumulative + record.histogram.get("+Inf", 0))))
    return buckets


def presence_families(snapshot: Snapshot) -> Iterator[Metric]:
    live = snapshot.live_workers()
    online = GaugeMetricFamily("agent2389_workers_online", "Live worker processes that take the agent's tasks",
                               labels=["agent"])
    ready = GaugeMetricFamily("agent2389_workers_ready", "Live workers whose LLM and tools for the agent verified",
                              labels=["agent"])
    available = GaugeMetricFamily("agent2389_agent_available", "1 when the bridge announces the agent available",
                                  labels=["agent"])
    states = snapshot.bridge.agents if snapshot.bridge else {}
    for agent in sorted(set(snapshot.agents) | set(snapshot.expected_agents)):
        online.add_metric([agent], sum(1 for w in live if agent in w.agents))
        ready.add_metric([agent], sum(1 for w in live if w.serves(agent)))
        available.add_metric([agent], 1 if states.get(agent, {}).get("status") == "available" else 0)
    yield online
    yield ready
    yield available
    yield GaugeMetricFamily("agent2389_worker_processes", "Live worker processes", value=len(live))
    yield GaugeMetricFamily("agent2389_worker_concurrency", "Task slots of all live workers",
                            value=sum(w.concurrency for w in live))
    yield GaugeMetricFamily("agent2389_worker_active_tasks", "Tasks live workers report running",
                            value=sum(w.active for w in live))
    yield GaugeMetricFamily("agent2389_llm_calls_waiting", "LLM calls live workers hold back because their "
                            "event loops fall behind (more calls than their CPU serves)",
                            value=sum(w.llm_waiting for w in live))


def process_families(snapshot: Snapshot) -> Iterator[Metric]:
    """Memory and CPU of every live process (as each last reported), and restarts by `agent2389 up`."""
    memory = GaugeMetricFamily("agent2389_process_resident_memory_bytes", "Resident memory of the process",
                               labels=["role", "process"])
    cpu = CounterMetricFamily("agent2389_process_cpu_seconds", "CPU time the process used",
                              labels=["role", "process"])
    rss, cpu_seconds = process_usage()
    reports = [("web", f"{socket.gethostname()}:{os.getpid()}", rss, cpu_seconds)]
    if snapshot.bridge is not None:
        reports.append(("bridge", snapshot.bridge.bridge_id, snapshot.bridge.rss_bytes, snapshot.bridge.cpu_seconds))
    reports += [("worker", w.worker_id, w.rss_bytes, w.cpu_seconds) for w in snapshot.live_workers()]
    for role, process, memory_bytes, seconds in reports:
        memory.add_metric([role, process], memory_bytes)
        cpu.add_metric([role, process], seconds)
    yield memory
    yield cpu
    restarts = CounterMetricFamily("agent2389_process_restarts", "Restarts of a process by `agent2389 up`",
                                   labels=["process"])
    for name, count in snapshot.restarts.items():
        restarts.add_metric([name], float(count))
    yield restarts


def mqtt_families(snapshot: Snapshot) -> Iterator[Metric]:
    bridge = snapshot.bridge
    yield GaugeMetricFamily("agent2389_bridge_up", "1 when a bridge reported within its time-to-live",
                            value=1 if bridge else 0)
    yield GaugeMetricFamily("agent2389_mqtt_connected", "1 when the bridge is connected to the MQTT broker",
                            value=1 if bridge and bridge.connected else 0)
    yield GaugeMetricFamily("agent2389_mqtt_subscribed", "1 when the bridge is subscribed to every input topic",
                            value=1 if bridge and bridge.subscribed else 0)
    if bridge is not None:
        since = bridge.connected_since if bridge.connected else None
        yield GaugeMetricFamily("agent2389_mqtt_connection_duration_seconds", "Age of the bridge's connection",
                                value=max(0.0, snapshot.taken_at - since) if since else 0.0)
        for name, doc, value in (
            ("connection_attempts", "MQTT connection attempts of the running bridge", bridge.connection_attempts),
            ("connections_established", "MQTT connections the running bridge made", bridge.connections_established),
            ("connection_failures", "Failed MQTT connection attempts of the running bridge",
             bridge.connection_failures),
            ("messages_received", "MQTT messages the running bridge received", bridge.messages_received),
        ):
            yield CounterMetricFamily(f"agent2389_mqtt_{name}", doc, value=value)
    yield CounterMetricFamily("agent2389_mqtt_messages_published", "MQTT messages bridge and workers published",
                              value=snapshot.mqtt.get("messages_published", 0))
    yield CounterMetricFamily("agent2389_mqtt_publish_failures", "MQTT publishes that failed",
                              value=snapshot.mqtt.get("publish_failures", 0))
    yield CounterMetricFamily("agent2389_progress_events_dropped", "Progress events workers dropped (broker "
                              "unreachable or too slow)", value=snapshot.mqtt.get("progress_events_dropped", 0))


def tool_families(snapshot: Snapshot) -> Iterator[Metric]:
    calls = CounterMetricFamily("agent2389_tool_calls", "Tool calls", labels=["agent", "tool"])
    failures = CounterMetricFamily("agent2389_tool_failures", "Tool calls that failed or timed out",
                                   labels=["agent", "tool"])
    timeouts = CounterMetricFamily("agent2389_tool_timeouts", "Tool calls stopped at their time-out",
                                   labels=["agent", "tool"])
    duration = SummaryMetricFamily("agent2389_tool_call_duration_seconds", "Time spent in tool calls",
                                   labels=["agent", "tool"])
    for record in snapshot.agents.values():
        for tool, raw in record.tools.items():
            labels = [record.agent_id, tool]
            calls.add_metric(labels, float(raw.get("executions", 0)))
            failures.add_metric(labels, float(raw.get("failures", 0)))
            timeouts.add_metric(labels, float(raw.get("timeouts", 0)))
            duration.add_metric(labels, int(raw.get("executions", 0)), float(raw.get("duration_seconds_sum", 0)))
    yield from (calls, failures, timeouts, duration)


def llm_families(snapshot: Snapshot) -> Iterator[Metric]:
    calls = CounterMetricFamily("agent2389_llm_calls", "LLM requests", labels=["agent", "model"])
    failures = CounterMetricFamily("agent2389_llm_failures", "LLM requests that failed", labels=["agent", "model"])
    tokens = CounterMetricFamily("agent2389_llm_tokens", "LLM tokens by direction",
                                 labels=["agent", "model", "direction"])
    duration = SummaryMetricFamily("agent2389_llm_call_duration_seconds", "Time spent waiting for the LLM",
                                   labels=["agent", "model"])
    for record in snapshot.agents.values():
        for model, raw in record.models.items():
            labels = [record.agent_id, model]
            calls.add_metric(labels, float(raw.get("calls", 0)))
            failures.add_metric(labels, float(raw.get("failures", 0)))
            tokens.add_metric([*labels, "input"], float(raw.get("input_tokens", 0)))
            tokens.add_metric([*labels, "output"], float(raw.get("output_tokens", 0)))
            duration.add_metric(labels, int(raw.get("calls", 0)), float(raw.get("duration_seconds_sum", 0)))
    yield from (calls, failures, tokens, duration)
    yield from llm_usage_families(snapshot)


def llm_usage_families(snapshot: Snapshot) -> Iterator[Metric]:
    """Prompt cache tokens, cost (agents with a price table) and the fleet-wide limiter's waits."""
    cache_read = CounterMetricFamily("agent2389_llm_cache_read_tokens", "Input tokens read from the prompt cache",
                                     labels=["agent", "model"])
    cache_write = CounterMetricFamily("agent2389_llm_cache_write_tokens", "Input tokens written to the prompt cache",
                                      labels=["agent", "model"])
    spent = CounterMetricFamily("agent2389_llm_cost", "What the LLM calls cost, from the agent's [llm.price]",
                                labels=["agent", "model", "currency"])
    wait = SummaryMetricFamily("agent2389_llm_wait_seconds", "Time LLM calls waited for the fleet-wide limiter",
                               labels=["agent"])
    for record in snapshot.agents.values():
        for model, raw in record.models.items():
            labels = [record.agent_id, model]
            cache_read.add_metric(labels, float(raw.get("cache_read_tokens", 0)))
            cache_write.add_metric(labels, float(raw.get("cache_write_tokens", 0)))
            if raw.get("currency"):
                spent.add_metric([*labels, raw["currency"]], float(raw.get("cost", 0)))
        if record.count("llm_waits"):
            wait.add_metric([record.agent_id], record.count("llm_waits"), record.number("llm_wait_seconds_sum"))
    yield from (cache_read, cache_write, spent, wait)

