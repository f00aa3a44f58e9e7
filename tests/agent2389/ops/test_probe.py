import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from agent2389.config.settings import Settings
from agent2389.ops.probe import check, check_url, describe_body, port_of, role_of
from agent2389.state.keys import Keys
from agent2389.state.presence import BridgeState, Presence, WorkerInfo, write_bridge_state
from tests.conftest import REPO
from tests.services import free_port

HEALTHY = {"status": "healthy", "checks": {"mqtt": {"status": "healthy", "message": "connected"}}}
UNHEALTHY = {
    "status": "unhealthy",
    "checks": {
        "mqtt": {"status": "unhealthy", "message": "bridge not connected"},
        "redis": {"status": "healthy", "message": "ok"},
        "workers": {"status": "degraded", "message": "no worker serves echo"},
    },
}


class _Answers(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    """A stand-in for the web app's health endpoints on a free local port."""
    _Answers.routes = {
        "/health": (200, json.dumps(HEALTHY).encode()),
        "/broken": (503, json.dumps(UNHEALTHY).encode()),
        "/live": (200, b'{"status": "alive"}'),
        "/text": (500, b"Internal Server Error"),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def health(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent2389.ops.cli", "health", *args], capture_output=True, text=True,
                          timeout=30, cwd=REPO, env={**os.environ, **(env or {})})


def test_health_exits_0_with_one_line_when_the_system_is_healthy(web: str) -> None:
    result = health("--url", f"{web}/health")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"healthy: {web}/health: HTTP 200 (status healthy)"]


def test_health_exits_1_and_names_every_failing_check(web: str) -> None:
    result = health("--url", f"{web}/broken")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"unhealthy: {web}/broken: HTTP 503 (status unhealthy; mqtt unhealthy: bridge not connected; "
        "workers degraded: no worker serves echo)"
    ]


@pytest.mark.parametrize("variable", ["AGENT2389_WEB_PORT", "HEALTH_PORT"])
def test_health_defaults_to_the_health_endpoint_on_the_web_port(web: str, variable: str) -> None:
    port = web.rsplit(":", 1)[1]
    result = health(env={variable: port})
    assert result.returncode == 0 and result.stdout.startswith("healthy: "), result.stdout


def test_health_exits_1_when_nothing_answers() -> None:
    verdict = check_url(f"http://127.0.0.1:{free_port()}/health", timeout=2)
    assert not verdict.healthy and "no answer (ConnectionRefusedError" in verdict.reason


def test_health_exits_1_on_a_server_error_without_a_json_body(web: str) -> None:
    verdict = check_url(f"{web}/text", timeout=2)
    assert not verdict.healthy and verdict.reason.endswith("HTTP 500")


def test_health_refuses_urls_that_are_not_http_and_never_shows_credentials() -> None:
    assert check_url("file:///etc/passwd", timeout=1).reason == "file:///etc/passwd: not an http(s) URL"
    verdict = check_url(f"http://admin:hunter2-secret@127.0.0.1:{free_port()}/health", timeout=1)
    assert not verdict.healthy and "hunter2" not in verdict.reason and "admin" not in verdict.reason


def test_a_bad_health_port_is_unhealthy_not_a_crash() -> None:
    result = health(env={"AGENT2389_WEB_PORT": "eighty"})
    assert result.returncode == 1
    assert result.stdout == (
        "unhealthy: bad number in environment: AGENT2389_WEB_PORT must be a whole number, not 'eighty'\n")


def test_the_body_summary_ignores_bodies_that_are_not_health_reports() -> None:
    assert describe_body(b"[1, 2]") == ""
    assert describe_body(b"not json") == ""
    assert describe_body(b'{"status": "degraded", "checks": {"llm": {"status": "stale"}}}') == (
        "status degraded; llm stale"
    )


def test_role_web_checks_live_on_the_configured_port(web: str) -> None:
    settings = Settings(web_port=int(web.rsplit(":", 1)[1]))
    verdict = check(settings, None, "web", False, timeout=2)
    assert verdict.healthy and verdict.reason == f"{web}/live: HTTP 200 (status alive)"


def test_role_worker_is_healthy_only_with_a_fresh_heartbeat_from_this_host(redis_url: str, key_prefix: str) -> None:
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix)
    assert not check(settings, None, "worker", False, timeout=2).healthy
    client = redis.Redis.from_url(redis_url)
    presence = Presence(client, Keys(key_prefix))
    presence.heartbeat(WorkerInfo("elsewhere@1", "another-host", 1, ["echo"], 4, 0.0))
    assert not check(settings, None, "worker", False, timeout=2).healthy
    presence.heartbeat(WorkerInfo("here@2", socket.gethostname(), 2, ["echo", "writer"], 4, 0.0))
    verdict = check(settings, None, "worker", False, timeout=2)
    client.close()
    assert verdict.healthy and verdict.reason.endswith("alive, serving echo, writer")


def test_role_bridge_is_healthy_only_while_the_bridge_reports_a_connection(redis_url: str, key_prefix: str) -> None:
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix)
    assert check(settings, None, "bridge", False, timeout=2).reason == "no bridge has reported recently"
    client = redis.Redis.from_url(redis_url)
    write_bridge_state(client, Keys(key_prefix), BridgeState(bridge_id="b1", connected=False))
    assert not check(settings, None, "bridge", False, timeout=2).healthy
    write_bridge_state(client, Keys(key_prefix), BridgeState(bridge_id="b1", connected=True, subscribed=True))
    client.close()
    verdict = check(settings, None, "bridge", False, timeout=2)
    assert verdict.healthy and verdict.reason == "bridge b1 connected to the MQTT broker, subscribed"


def test_an_unreachable_redis_is_unhealthy_and_its_password_is_not_shown() -> None:
    settings = Settings(redis_url=f"redis://:sup3r-secret-pw@127.0.0.1:{free_port()}/0")
    verdict = check(settings, None, "worker", False, timeout=1)
    assert not verdict.healthy and verdict.reason.startswith("redis unreachable (")
    assert "sup3r" not in verdict.reason


@pytest.mark.parametrize(
    ("cmdline", "role"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/agent2389", "worker", "--config", "/etc/agent2389"], "worker"),
        (["tini", "--", "agent2389", "--config", "worker", "bridge"], "bridge"),
        (["python", "-m", "agent2389.ops.cli", "web", "--port", "9000"], "web"),
        (["agent2389", "up", "--config", "config/examples/echo"], "web"),
        (["agent2389", "validate", "--config", "x"], None),
        (["/bin/sh", "-c", "sleep 1"], None),
        ([], None),
    ],
)
def test_the_role_is_read_from_the_agent2389_subcommand(cmdline: list[str], role: str | None) -> None:
    assert role_of(cmdline) == role


def test_the_web_port_comes_from_the_command_line_when_given() -> None:
    assert port_of(["agent2389", "web", "--port", "9000"], 8080) == 9000
    assert port_of(["agent2389", "web", "--port=9001"], 8080) == 9001
    assert port_of(["agent2389", "web"], 8080) == 8080
