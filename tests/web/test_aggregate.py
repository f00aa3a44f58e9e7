import time

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import System
from web.aggregate import percentile

RUNBOOK_TASK_FIELDS = (
    "tasks_received", "tasks_processing", "tasks_completed", "tasks_failed", "tasks_rejected",
    "avg_processing_time_ms", "processing_time_p50_ms", "processing_time_p95_ms", "processing_time_p99_ms",
    "current_pipeline_depth", "max_pipeline_depth_reached",
)
MQTT_FIELDS = (
    "connected", "connection_attempts", "connections_established", "connection_failures", "messages_published",
    "publish_failures", "messages_received", "last_heartbeat", "connection_duration_seconds",
)


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 10.0
    assert percentile([], 99) == 0.0
    assert percentile([7.0], 99) == 7.0


def test_an_empty_system_reports_zeros_in_the_reference_shape(client: FlaskClient, system: System) -> None:
    system.healthy()
    body = client.get("/metrics").get_json()
    assert set(body) >= {"tasks", "mqtt", "tools", "lifecycle", "timestamp", "agents"}
    assert all(body["tasks"][name] == 0 for name in RUNBOOK_TASK_FIELDS)
    assert set(body["mqtt"]) >= set(MQTT_FIELDS)
    assert body["tools"]["tool_stats"] == {"http_request": {
        "name": "http_request", "executions": 0, "failures": 0, "timeouts": 0, "avg_execution_time_ms": 0.0,
        "last_execution": 0, "success_rate": None}}
    assert abs(body["timestamp"] - time.time()) < 5


def test_task_numbers_add_up_over_every_agent_and_break_down_per_agent(client: FlaskClient, system: System) -> None:
    system.healthy()
    for i, seconds in enumerate((0.1, 0.2, 0.3, 0.4)):
        system.task("echo", f"e{i}", seconds)
    system.task("writer", "w0", 1.0, error_code="llm_error")
    system.stats.task_received("writer")
    system.stats.task_rejected("writer", "invalid_json")
    system.stats.task_started("writer", "w1", "conv", 1)
    tasks = client.get("/metrics").get_json()["tasks"]
    assert tasks["tasks_received"] == 6
    assert tasks["tasks_completed"] == 4 and tasks["tasks_failed"] == 1 and tasks["tasks_rejected"] == 1
    assert tasks["tasks_processing"] == 1 and tasks["current_pipeline_depth"] == 1
    assert tasks["avg_processing_time_ms"] == pytest.approx(400.0)
    assert tasks["processing_time_p50_ms"] == pytest.approx(300.0)
    assert tasks["processing_time_p99_ms"] == pytest.approx(976.0)
    agents = client.get("/metrics").get_json()["agents"]
    assert agents["echo"]["tasks"]["tasks_completed"] == 4 and agents["writer"]["tasks"]["tasks_failed"] == 1
    assert agents["writer"]["failed_by_code"] == {"llm_error": 1}
    assert agents["writer"]["rejected_by_reason"] == {"invalid_json": 1}
    assert agents["echo"]["throughput_per_minute"] == pytest.approx(0.8)


def test_the_peak_of_tasks_in_flight_is_the_max_pipeline_depth(client: FlaskClient, system: System) -> None:
    system.healthy()
    for task_id in ("a", "b", "c"):
        system.stats.task_started("echo", task_id, "conv", 1)
    for task_id in ("a", "b"):
        system.stats.task_finished("echo", task_id, 0.1, None)
    tasks = client.get("/metrics").get_json()["tasks"]
    assert tasks["max_pipeline_depth_reached"] == 3 and tasks["current_pipeline_depth"] == 1


def test_mqtt_numbers_come_from_the_bridge_and_the_publishers(client: FlaskClient, system: System) -> None:
    state = system.bridge()
    system.stats.mqtt_published(5)
    system.stats.mqtt_published(failed=True)
    mqtt = client.get("/metrics").get_json()["mqtt"]
    assert mqtt["connected"] is True
    assert (mqtt["connection_attempts"], mqtt["connections_established"], mqtt["connection_failures"]) == (3, 2, 1)
    assert mqtt["messages_received"] == 12
    assert (mqtt["messages_published"], mqtt["publish_failures"]) == (5, 1)
    assert 89 <= mqtt["connection_duration_seconds"] <= 95
    assert mqtt["last_heartbeat"] == int(state.last_heartbeat)


def test_without_a_bridge_mqtt_is_disconnected(client: FlaskClient, system: System) -> None:
    mqtt = client.get("/metrics").get_json()["mqtt"]
    assert mqtt["connected"] is False and mqtt["connection_duration_seconds"] == 0


def test_tool_stats_are_keyed_by_tool_and_summed_over_agents(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.task("echo", "t1", 0.4, tools=(("http_request", "ok"), ("web_search", "timeout")))
    system.task("writer", "t2", 0.8, tools=(("http_request", "failed"),))
    tools = client.get("/metrics").get_json()["tools"]
    http = tools["tool_stats"]["http_request"]
    assert (http["executions"], http["failures"], http["timeouts"]) == (2, 1, 0)
    assert http["avg_execution_time_ms"] == pytest.approx(150.0)
    assert http["success_rate"] == 0.5 and abs(http["last_execution"] - time.time()) < 5
    assert tools["tool_stats"]["web_search"]["timeouts"] == 1
    assert (tools["total_executions"], tools["total_failures"], tools["total_timeouts"]) == (3, 2, 1)


def test_llm_calls_and_tokens_are_reported_per_model(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.task("echo", "t1", 0.4, model="claude-test")
    system.task("writer", "t2", 0.2, model="claude-test", error_code="llm_error")
    llm = client.get("/metrics").get_json()["llm"]
    assert llm["models"]["claude-test"] == {"calls": 2, "failures": 1, "input_tokens": 200, "output_tokens": 80,
                                            "cache_read_tokens": 0, "cache_write_tokens": 0, "cost": 0.0,
                                            "avg_call_time_ms": pytest.approx(150.0)}


def test_lifecycle_workers_and_queues_describe_the_system_now(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.worker("w2", agents=("echo",), active=2, processed=9, llm_waiting=6)
    system.queue("writer", 4)
    body = client.get("/metrics").get_json()
    assert body["queues"] == {"echo": 0, "writer": 4}
    assert body["workers"] == {"online": 2, "concurrency": 8, "active": 2, "processed": 9, "llm_calls_waiting": 6}
    assert body["lifecycle"]["workers_online"] == 2 and body["lifecycle"]["healthy"] is True
    assert body["lifecycle"]["current_state"] == "healthy"
    assert 119 <= body["lifecycle"]["bridge_uptime_seconds"] <= 125


def test_messages_the_bridge_dropped_are_counted_apart_from_rejections(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.stats.task_received("writer")
    system.stats.task_dropped("writer")
    body = client.get("/metrics").get_json()
    assert body["tasks"]["tasks_dropped"] == 1 and body["tasks"]["tasks_rejected"] == 0
    assert body["agents"]["writer"]["tasks"]["tasks_dropped"] == 1
