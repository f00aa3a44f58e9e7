import socket
import time

import pytest
from flask.testing import FlaskClient

from agent2389.config.settings import Settings
from tests.services import free_port
from tests.web.conftest import System
from web.app import create_app

CHECKS = {"mqtt", "redis", "workers", "llm", "task_processing"}


def test_a_connected_bridge_and_a_verified_worker_per_agent_is_healthy(client: FlaskClient, system: System) -> None:
    system.healthy()
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "healthy"
    assert set(body["checks"]) == CHECKS
    for check in body["checks"].values():
        assert check["status"] == "healthy"
        assert check["message"] and abs(check["last_check"] - time.time()) < 5
    assert body["checks"]["workers"]["agents"] == {"echo": 1, "writer": 1}
    assert body["checks"]["mqtt"]["message"].startswith("MQTT connection established")


def test_uptime_is_the_time_since_the_web_app_started(client: FlaskClient, system: System) -> None:
    client.application.extensions["agent2389"].started_at = time.time() - 125
    assert 125 <= client.get("/health").get_json()["uptime_seconds"] <= 130


def test_without_a_bridge_report_the_mqtt_check_fails_and_the_system_is_unhealthy(
    client: FlaskClient, system: System
) -> None:
    system.worker("w1")
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "unhealthy"
    assert body["checks"]["mqtt"]["status"] == "unhealthy"
    assert "no bridge has reported" in body["checks"]["mqtt"]["message"]


def test_a_bridge_that_lost_the_broker_makes_the_mqtt_check_unhealthy(client: FlaskClient, system: System) -> None:
    system.bridge(connected=False, subscribed=False, connection_failures=4)
    system.worker("w1")
    check = client.get("/health").get_json()["checks"]["mqtt"]
    assert check["status"] == "unhealthy" and "4 failed connection attempts" in check["message"]


def test_an_agent_without_a_live_worker_degrades_the_system(client: FlaskClient, system: System) -> None:
    system.bridge()
    system.worker("w1", agents=("echo",))
    system.worker("w2", agents=("writer",), age_s=60)
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "degraded"
    assert body["checks"]["workers"]["status"] == "degraded"
    assert body["checks"]["workers"]["agents"] == {"echo": 1, "writer": 0}
    assert "no live worker for writer" in body["checks"]["workers"]["message"]


def test_no_live_worker_at_all_is_unhealthy(client: FlaskClient, system: System) -> None:
    system.bridge()
    body = client.get("/health").get_json()
    assert body["status"] == "unhealthy" and body["checks"]["workers"]["status"] == "unhealthy"


def test_a_failed_llm_verification_is_reported_without_secrets_or_hosts(client: FlaskClient, system: System) -> None:
    system.bridge()
    system.worker("w1", not_ready={"writer": "401 from https://api.example.com: api_key=sk-abcdefghijklmnop"})
    check = client.get("/health").get_json()["checks"]["llm"]
    assert check["status"] == "degraded" and check["verified"] == {"echo": True, "writer": False}
    assert "writer:" in check["message"]
    assert "sk-abcdefghijklmnop" not in check["message"] and "api.example.com" not in check["message"]


def test_tasks_waiting_with_no_activity_for_five_minutes_are_stale(
    client: FlaskClient, system: System
) -> None:
    system.healthy()
    system.task("echo", "t1", 0.2)
    system.client.hset(system.keys.agent_stats("echo"), mapping={"last_started": time.time() - 400,
                                                                 "last_finished": time.time() - 390})
    system.queue("echo", 3)
    response = client.get("/health")
    check = response.get_json()["checks"]["task_processing"]
    assert response.status_code == 503 and check["status"] == "stale"
    assert check["waiting"] == 3 and "3 task(s) waiting" in check["message"]


def test_recent_activity_or_an_empty_queue_is_not_stale(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.client.hset(system.keys.agent_stats("echo"), mapping={"last_started": time.time() - 400})
    assert client.get("/health").get_json()["checks"]["task_processing"]["status"] == "healthy"
    system.queue("echo", 1)
    system.task("echo", "t1", 0.2)
    assert client.get("/health").get_json()["checks"]["task_processing"]["status"] == "healthy"


def test_tasks_received_long_ago_and_never_started_are_stale(client: FlaskClient, system: System) -> None:
    system.healthy()
    system.stats.task_received("echo")
    system.client.hset(system.keys.agent_stats("echo"), "first_received", time.time() - 600)
    system.queue("echo", 1)
    check = client.get("/health").get_json()["checks"]["task_processing"]
    assert check["status"] == "stale" and "no task was ever started" in check["message"]


def test_ready_needs_a_subscribed_bridge_and_a_ready_and_announced_worker_for_every_agent(
    client: FlaskClient, system: System
) -> None:
    system.bridge(subscribed=False)
    system.worker("w1", not_ready={"writer": "LLM unreachable"})
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == ["the bridge is not subscribed yet", "echo is not yet announced available",
                                              "no ready worker for writer"]
    system.bridge()
    system.worker("w1")
    system.status("echo", ours=True)
    system.status("writer", "unavailable", ours=True)
    response = client.get("/ready")
    assert response.status_code == 503 and response.get_json()["reasons"] == ["writer is not yet announced available"]
    system.status("writer", ours=True)
    response = client.get("/ready")
    assert response.status_code == 200 and response.get_json() == {"ready": True, "reasons": [],
                                                                    "timestamp": pytest.approx(time.time(), abs=5)}


@pytest.fixture
def dead_redis_client(settings: Settings) -> FlaskClient:
    dead = Settings(agents=settings.agents, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                    key_prefix=settings.key_prefix)
    return create_app(dead).test_client()


def test_a_redis_outage_is_reported_by_health_quickly_and_never_as_a_server_error(
    dead_redis_client: FlaskClient,
) -> None:
    started = time.monotonic()
    response = dead_redis_client.get("/health")
    assert time.monotonic() - started < 3
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "unhealthy"
    assert body["checks"]["redis"]["status"] == "unhealthy"
    assert body["checks"]["redis"]["message"].startswith("Redis did not answer (ConnectionError")
    assert "127.0.0.1" not in body["checks"]["redis"]["message"]
    assert {c["status"] for c in body["checks"].values()} == {"unhealthy"}


def test_during_a_redis_outage_probes_and_metrics_answer_without_errors(dead_redis_client: FlaskClient) -> None:
    assert dead_redis_client.get("/live").status_code == 200
    assert dead_redis_client.get("/ready").status_code == 503
    metrics = dead_redis_client.get("/metrics")
    assert metrics.status_code == 503 and metrics.get_json()["error"] == "redis_unavailable"
    scrape = dead_redis_client.get("/metrics?format=prometheus")
    assert scrape.status_code == 200 and "agent2389_redis_up 0.0" in scrape.get_data(as_text=True)
    assert dead_redis_client.get("/api/workers").status_code == 503


def test_a_redis_that_accepts_but_never_answers_costs_seconds_not_a_hang(settings: Settings) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        app = create_app(Settings(agents=settings.agents, redis_url=f"redis://127.0.0.1:{port}/0"))
        started = time.monotonic()
        response = app.test_client().get("/health")
        assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"]["message"].startswith("Redis did not answer (TimeoutError")


def test_health_and_metrics_carry_no_host_name_from_a_redis_error(settings: Settings) -> None:
    # redis-py names the host it could not reach ("Error 111 connecting to localhost:PORT").
    app = create_app(Settings(agents=settings.agents, redis_url=f"redis://localhost:{free_port()}/0"))
    client = app.test_client()
    for path in ("/health", "/metrics", "/ready"):
        body = client.get(path).get_data(as_text=True)
        assert "Redis did not answer" in body or path == "/ready"
        assert "localhost" not in body and ":6379" not in body, (path, body)


def test_health_carries_no_host_name_or_url_from_a_workers_not_ready_reason(client: FlaskClient,
                                                                              system: System) -> None:
    system.bridge()
    system.worker("w1", not_ready={"writer": "Error 111 connecting to cache-7:6379 as admin:s3cret@cache-7:6379, "
                                             "then POST //svc-b.corp.internal/v1 and mqtt-broker:8883"})
    body = client.get("/health").get_data(as_text=True) + client.get("/metrics").get_data(as_text=True)
    for leaked in ("cache-7", "s3cret", "svc-b", "mqtt-broker", "corp.internal", "//"):
        assert leaked not in body, leaked
    assert "writer: Error 111 connecting to [host]" in body
