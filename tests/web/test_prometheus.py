from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import System

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;"
                     "q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")


def scrape(client: FlaskClient) -> dict[str, Any]:
    """Every sample of a text-format scrape, by name, as {labels: value}."""
    response = client.get("/metrics?format=prometheus")
    assert response.status_code == 200
    samples: dict[str, Any] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return float(samples[name][tuple(sorted(labels.items()))])


@pytest.mark.parametrize(("accept", "expected"), [
    ("*/*", "application/json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json"),
    ("application/json", "application/json"),
    (PROMETHEUS_ACCEPT, "application/openmetrics-text"),
    ("text/plain;version=0.0.4", "text/plain"),
])
def test_metrics_negotiates_json_for_people_and_the_exposition_format_for_prometheus(
    client: FlaskClient, system: System, accept: str, expected: str
) -> None:
    system.healthy()
    response = client.get("/metrics", headers={"Accept": accept})
    assert response.status_code == 200 and response.content_type.startswith(expected)


def test_format_prometheus_in_the_query_forces_the_text_format(client: FlaskClient) -> None:
    response = client.get("/metrics?format=prometheus", headers={"Accept": "application/json"})
    assert response.content_type.startswith("text/plain; version=0.0.4")


def test_task_counters_and_the_duration_histogram_match_what_was_recorded(client: FlaskClient,
                                                                         system: System) -> None:
    system.healthy()
    for i, seconds in enumerate((0.004, 0.2, 0.3, 7.0)):
        system.task("echo", f"t{i}", seconds)
    system.task("echo", "bad", 0.3, error_code="tool_execution_failed")
    system.stats.task_rejected("echo", "too_large")
    system.stats.task_started("echo", "running", "conv", 1)
    samples = scrape(client)
    assert value(samples, "agent2389_tasks_received_total", agent="echo") == 5
    assert value(samples, "agent2389_tasks_completed_total", agent="echo") == 4
    assert value(samples, "agent2389_tasks_failed_total", agent="echo") == 1
    assert value(samples, "agent2389_task_errors_total", agent="echo", code="tool_execution_failed") == 1
    assert value(samples, "agent2389_tasks_rejected_total", agent="echo", reason="too_large") == 1
    assert value(samples, "agent2389_tasks_in_progress", agent="echo") == 1
    assert value(samples, "agent2389_task_duration_seconds_bucket", agent="echo", le="0.005") == 1
    assert value(samples, "agent2389_task_duration_seconds_bucket", agent="echo", le="0.5") == 4
    assert value(samples, "agent2389_task_duration_seconds_bucket", agent="echo", le="10.0") == 5
    assert value(samples, "agent2389_task_duration_seconds_bucket", agent="echo", le="+Inf") == 5
    assert value(samples, "agent2389_task_duration_seconds_count", agent="echo") == 5
    assert value(samples, "agent2389_task_duration_seconds_sum", agent="echo") == pytest.approx(7.804)


def test_presence_queue_and_mqtt_gauges(client: FlaskClient, system: System) -> None:
    system.bridge()
    system.worker("w1", agents=("echo", "writer"), active=1, llm_waiting=3)
    system.worker("w2", agents=("echo",), not_ready={"echo": "no API key"}, llm_waiting=2)
    system.worker("gone", agents=("echo",), llm_waiting=7, age_s=60)
    system.queue("writer", 2)
    system.client.rpush(system.keys.queue("writer") + "\x06\x169", "urgent")
    system.stats.mqtt_published(3)
    samples = scrape(client)
    assert value(samples, "agent2389_workers_online", agent="echo") == 2
    assert value(samples, "agent2389_workers_ready", agent="echo") == 1
    assert value(samples, "agent2389_worker_processes") == 2
    assert value(samples, "agent2389_worker_active_tasks") == 1
    assert value(samples, "agent2389_llm_calls_waiting") == 5  # live workers only
    assert value(samples, "agent2389_queue_length", agent="writer") == 3
    assert value(samples, "agent2389_agent_available", agent="echo") == 1
    assert value(samples, "agent2389_mqtt_connected") == 1 and value(samples, "agent2389_bridge_up") == 1
    assert value(samples, "agent2389_mqtt_connection_failures_total") == 1
    assert value(samples, "agent2389_mqtt_messages_published_total") == 3
    assert value(samples, "agent2389_redis_up") == 1


def test_without_a_bridge_mqtt_connected_is_zero(client: FlaskClient) -> None:
    samples = scrape(client)
    assert value(samples, "agent2389_mqtt_connected") == 0 and value(samples, "agent2389_bridge_up") == 0


def test_tool_and_llm_metrics_are_labelled_by_agent_tool_and_model(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.task("echo", "t1", 0.4, model="claude-test", tools=(("http_request", "timeout"), ("http_request", "ok")))
    samples = scrape(client)
    assert value(samples, "agent2389_tool_calls_total", agent="echo", tool="http_request") == 2
    assert value(samples, "agent2389_tool_timeouts_total", agent="echo", tool="http_request") == 1
    assert value(samples, "agent2389_tool_failures_total", agent="echo", tool="http_request") == 1
    assert value(samples, "agent2389_tool_call_duration_seconds_count", agent="echo", tool="http_request") == 2
    assert value(samples, "agent2389_llm_calls_total", agent="echo", model="claude-test") == 1
    assert value(samples, "agent2389_llm_tokens_total", agent="echo", model="claude-test", direction="input") == 100
    assert value(samples, "agent2389_llm_tokens_total", agent="echo", model="claude-test", direction="output") == 40


def test_names_follow_prometheus_conventions_and_no_label_carries_a_task_id(client: FlaskClient,
                                                                           system: System) -> None:
    system.healthy()
    task_ids = [f"task-{i}" for i in range(3)]
    for task_id in task_ids:
        system.task("echo", task_id, 0.1, conversation="conversation-xyz", model="m", tools=(("http_request", "ok"),))
    client.get("/health")
    response = client.get("/metrics?format=prometheus")
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        assert family.name.startswith("agent2389_"), family.name
        for sample in family.samples:
            assert not set(sample.labels.values()) & {*task_ids, "conversation-xyz"}
            assert not any(name.endswith("_ms") for name in sample.labels)
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name


def test_http_requests_to_the_web_app_are_measured_by_endpoint(client: FlaskClient, system: System) -> None:
    system.healthy()
    client.get("/health")
    client.get("/api/tasks/some-task-id")
    samples = scrape(client)
    count = "agent2389_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", status="200", endpoint="health") == 1
    assert value(samples, count, method="GET", status="404", endpoint="api.task") == 1
    assert value(samples, "agent2389_http_request_total", method="GET", status="404") == 1


def test_memory_and_cpu_of_web_bridge_and_live_workers_are_exported(client: FlaskClient, system: System) -> None:
    system.bridge()
    system.worker("w1")
    system.worker("gone", age_s=60)
    samples = scrape(client)
    memory = samples["agent2389_process_resident_memory_bytes"]
    roles = sorted(dict(labels)["role"] for labels in memory)
    assert roles == ["bridge", "web", "worker"]
    assert all(value > 1_000_000 for value in memory.values())
    assert value(samples, "agent2389_process_cpu_seconds_total", role="worker", process="w1") > 0


def test_restarts_by_agent2389_up_are_counted_per_process_in_both_formats(client: FlaskClient,
                                                                          system: System) -> None:
    system.healthy()
    system.client.hset(system.keys.process_restarts(), mapping={"worker-2": 2, "bridge": 1})
    samples = scrape(client)
    assert value(samples, "agent2389_process_restarts_total", process="worker-2") == 2
    assert value(samples, "agent2389_process_restarts_total", process="bridge") == 1
    restarts = client.get("/metrics").get_json()["restarts"]
    assert restarts == {"total": 3, "by_process": {"bridge": 1, "worker-2": 2}}


def test_messages_the_bridge_dropped_have_a_counter_of_their_own(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.stats.task_dropped("echo")
    system.stats.task_dropped("echo")
    assert value(scrape(client), "agent2389_tasks_dropped_total", agent="echo") == 2
