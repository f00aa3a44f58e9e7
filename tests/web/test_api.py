import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agent2389.config.settings import Settings
from agent2389.state.timeline import TaskEvent
from tests.web.conftest import System, web_app
from web.app import ENDPOINTS

TOKEN = "s3cret-token-for-tests"


def test_the_root_lists_every_endpoint(client: FlaskClient) -> None:
    body = client.get("/").get_json()
    assert body["endpoints"] == ENDPOINTS
    assert {"/health", "/metrics", "/ready", "/live", "/dashboard"} <= set(body["endpoints"])


def test_live_answers_while_the_process_serves(client: FlaskClient) -> None:
    response = client.get("/live")
    assert response.status_code == 200 and response.get_json()["alive"] is True


def test_workers_show_host_pid_queues_load_and_heartbeat(client: FlaskClient, system: System) -> None:
    system.worker("w1", agents=("echo",), active=2, processed=10, llm_waiting=4)
    system.worker("w2", agents=("writer",), age_s=30)
    body = client.get("/api/workers").get_json()
    assert body["online"] == 1
    w1, w2 = sorted(body["workers"], key=lambda w: w["worker_id"])
    assert (w1["host"], w1["pid"], w1["queues"], w1["concurrency"]) == ("host-w1", 1002, ["agent.echo"], 4)
    assert (w1["active"], w1["processed"], w1["online"], w1["llm_calls_waiting"]) == (2, 10, True, 4)
    assert abs(w1["last_heartbeat"] - time.time()) < 5
    assert w2["online"] is False and w2["heartbeat_age_seconds"] >= 29


def test_queues_show_what_waits_and_who_consumes_it(client: FlaskClient, system: System) -> None:
    system.worker("w1", agents=("echo", "writer"))
    system.queue("echo", 5)
    system.stats.task_started("echo", "t1", "c", 1)
    queues = {q["agent"]: q for q in client.get("/api/queues").get_json()["queues"]}
    assert queues["echo"] == {"agent": "echo", "queue": "agent.echo", "length": 5, "in_progress": 1, "consumers": 1}
    assert queues["writer"]["length"] == 0


def test_a_task_stops_counting_as_in_progress_two_heartbeats_after_its_worker_stopped_beating(
    client: FlaskClient, system: System, settings: Settings
) -> None:
    system.worker("w1", agents=("echo",))
    system.stats.task_started("echo", "t1", "c", 1)
    assert client.get("/api/queues").get_json()["queues"][0]["in_progress"] == 1
    system.worker("w1", agents=("echo",), age_s=2.5 * settings.worker_heartbeat_s + 0.5)
    queues = {q["agent"]: q for q in client.get("/api/queues").get_json()["queues"]}
    assert queues["echo"]["in_progress"] == 0
    assert client.get("/metrics").get_json()["tasks"]["tasks_processing"] == 0


def test_agents_show_status_workers_throughput_and_error_rate(client: FlaskClient, system: System) -> None:
    system.healthy()
    for i in range(3):
        system.task("echo", f"ok{i}", 0.1)
    system.task("echo", "bad", 0.1, error_code="llm_error")
    agents = {a["agent"]: a for a in client.get("/api/agents").get_json()["agents"]}
    echo = agents["echo"]
    assert (echo["status"], echo["workers_online"], echo["workers_ready"]) == ("available", 1, 1)
    assert (echo["tasks_completed"], echo["tasks_failed"]) == (3, 1)
    assert echo["error_rate"] == 0.25 and echo["recent_error_rate"] == 0.25
    assert echo["throughput_per_minute"] == pytest.approx(0.8)
    assert sum(echo["per_minute"][-2:]) == 4 and len(echo["per_minute"]) == 15  # a minute may turn meanwhile


def test_recent_tasks_can_be_filtered_by_agent_and_state_and_limited(client: FlaskClient, system: System) -> None:
    system.task("echo", "e1", 0.1)
    system.task("echo", "e2", 0.2, error_code="llm_error")
    system.task("writer", "w1", 0.3)
    system.stats.task_event("w2", "writer", TaskEvent.QUEUED, conversation_id="c9")
    tasks = client.get("/api/tasks").get_json()["tasks"]
    assert [t["task_id"] for t in tasks] == ["w2", "w1", "e2", "e1"]
    assert tasks[0]["state"] == "queued" and tasks[0]["conversation_id"] == "c9"
    assert [t["task_id"] for t in client.get("/api/tasks?agent=echo").get_json()["tasks"]] == ["e2", "e1"]
    failed = client.get("/api/tasks?state=failed").get_json()["tasks"]
    assert [(t["task_id"], t["error_code"]) for t in failed] == [("e2", "llm_error")]
    assert len(client.get("/api/tasks?limit=2").get_json()["tasks"]) == 2


def test_a_task_summary_has_its_timings(client: FlaskClient, system: System) -> None:
    system.task("echo", "t1", 0.25, model="m", tools=(("http_request", "ok"),))
    [task] = client.get("/api/tasks").get_json()["tasks"]
    assert (task["agent"], task["state"], task["attempts"], task["duration_ms"]) == ("echo", "completed", 1, 250.0)
    assert task["received_at"] <= task["started_at"] <= task["finished_at"]
    assert task["queue_wait_ms"] >= 0 and (task["llm_calls"], task["tool_calls"]) == (1, 1)


@pytest.mark.parametrize("query", ["state=sleeping", "limit=0", "limit=501", "limit=ten", "agent=" + "a" * 300])
def test_bad_task_queries_are_refused_with_a_reason(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/tasks?{query}")
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"


def test_the_state_filter_names_the_states_a_task_can_be_in(client: FlaskClient) -> None:
    response = client.get("/api/tasks?state=retrying")
    assert response.status_code == 400
    assert response.get_json()["message"] == "state must be one of received, queued, started, completed, failed"


def test_a_task_timeline_lists_every_step_in_order(client: FlaskClient, system: System) -> None:
    system.task("echo", "t1", 0.5, error_code="llm_error", model="claude-x", tools=(("http_request", "timeout"),))
    body = client.get("/api/tasks/t1").get_json()
    assert [e["event"] for e in body["events"]] == ["queued", "started", "llm_call", "tool_call", "failed"]
    assert body["state"] == "failed" and body["error_code"] == "llm_error"
    llm, tool, failed = body["events"][2:]
    assert llm["model"] == "claude-x" and llm["duration_ms"] == 250.0 and llm["ok"] is False
    assert tool["tool"] == "http_request" and tool["outcome"] == "timeout"
    assert failed["message"] == "the model is overloaded"
    offsets = [e["offset_ms"] for e in body["events"]]
    assert offsets == sorted(offsets) and offsets[0] == 0.0


def test_an_unknown_task_is_not_found(client: FlaskClient) -> None:
    response = client.get("/api/tasks/no-such-task")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_an_unknown_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


@pytest.fixture
def guarded(settings: Settings) -> Iterator[Flask]:
    yield from web_app(settings, TOKEN)


@pytest.mark.parametrize("path", ["/api/workers", "/api/queues", "/api/agents", "/api/tasks", "/api/tasks/t1"])
def test_with_a_token_set_inspection_needs_the_bearer_token(guarded: Flask, system: System, path: str) -> None:
    system.task("echo", "t1", 0.1)
    client = guarded.test_client()
    denied = client.get(path)
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(path, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("path", ["/", "/health", "/ready", "/live", "/metrics", "/metrics?format=prometheus"])
def test_with_a_token_set_health_and_metrics_stay_open(guarded: Flask, system: System, path: str) -> None:
    system.healthy()
    for agent_id in ("echo", "writer"):
        system.status(agent_id, ours=True)  # announced: /ready needs that too
    assert guarded.test_client().get(path).status_code == 200


def test_a_pipeline_task_is_one_row_with_a_hop_per_agent(client: FlaskClient, system: System) -> None:
    system.task("echo", "p1", 0.1)
    system.task("writer", "p1", 0.3, error_code="llm_error")
    [task] = client.get("/api/tasks").get_json()["tasks"]
    assert (task["agent"], task["state"], task["attempts"], task["duration_ms"]) == ("writer", "failed", 1, 300.0)
    assert task["pipeline"] == [{"agent": "echo", "state": "completed"}, {"agent": "writer", "state": "failed"}]
    [echo_hop] = client.get("/api/tasks?agent=echo").get_json()["tasks"]
    assert (echo_hop["agent"], echo_hop["state"], echo_hop["duration_ms"]) == ("echo", "completed", 100.0)
    assert client.get("/api/tasks?agent=echo&state=failed").get_json()["tasks"] == []
