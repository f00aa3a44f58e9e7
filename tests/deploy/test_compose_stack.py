"""The image built and docker-compose.yml run for real (`make test-deploy`), as an operator runs them.

One stack for the module, in the order an operator meets things: it starts with three workers, serves
a few hundred tasks, is watched by Prometheus and Flower, loses a worker to SIGKILL, has Redis
restarted, and is taken down; each test says what it found and the stack goes on to the next. Then a
second stack runs with MQTT passwords. Needs a Docker daemon and Compose v1 (scripts/docker-host.sh);
plain `pytest` leaves these tests out (the `docker` marker, deselected in tests/deploy/conftest.py).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent2389.config.agent import MqttSection
from tests.deploy.compose_stack import (
    OVERRIDE,
    ComposeStack,
    agents_folder,
    build_image,
    grace_seconds,
    http_json,
    require_docker,
    wait_for,
)
from tests.deploy.conftest import connects, load_yaml, repo_path
from tests.reliability.peer import LoadPeer, Tally

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

WORKERS = 3
TASKS = 300
# docker-compose.yml publishes Flower on this loopback port.


def exactly_once(count: int) -> Tally:
    return Tally(sent=count, answered=count, responses=count, errors=0, missing=0, duplicated=0, wrong_topic=0)


@pytest.fixture(scope="module")
def docker() -> tuple[str, str]:
    """docker and docker-compose, once the image is built from the working tree."""
    docker, compose = require_docker()
    print(f"image built in {build_image(docker):.0f} s")
    return docker, compose


@pytest.fixture(scope="module")
def stack(docker: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    agents = agents_folder(tmp_path_factory.mktemp("deploy") / "agents")
    env = {"DEPLOY_TEST_AGENTS": str(agents), "FLOWER_BASIC_AUTH": f"ops:{uuid.uuid4().hex}"}
    stack = ComposeStack(*docker, overrides=(OVERRIDE,), env=env)
    with running(stack, "up", "-d", "--scale", f"worker={WORKERS}"):
        yield stack


@contextmanager
def running(stack: ComposeStack, *up: str) -> Iterator[None]:
    """The stack started with ``up``, then removed with its volumes. A failure inside shows the logs
    (for tests on the module's stack, tests/deploy/conftest.py adds them to the report)."""
    try:
        stack.compose(*up)
        yield
    except BaseException:
        print(f"--- docker-compose logs of {stack.project} ---\n{stack.logs()}")
        raise
    finally:
        stack.compose("down", "-v", "--remove-orphans", "-t", "10")


@pytest.fixture(scope="module")
def peer(stack: ComposeStack) -> Iterator[LoadPeer]:
    """A 2389 agent on the host, reaching the broker through its published (loopback) port."""
    client = LoadPeer(stack.mqtt_url, name=f"deploy-{uuid.uuid4().hex[:6]}")
    yield client
    client.close()


def processed(stack: ComposeStack) -> dict[str, int]:
    return {w["worker_id"]: int(w["processed"]) for w in stack.workers()}


def test_the_stack_starts_healthy_with_three_workers_each_in_its_own_container(stack: ComposeStack) -> None:
    waited = wait_for(lambda: stack.health().get("status") == "healthy" and stack.online_workers() == WORKERS,
                      180, lambda: f"/health did not say healthy with {WORKERS} workers: {stack.health()}")
    print(f"healthy with {WORKERS} workers {waited:.0f} s after `up`")
    hosts = {w["host"] for w in stack.workers()}
    containers = {c["Config"]["Hostname"] for c in stack.containers("worker")}
    assert len(hosts) == WORKERS and hosts == containers
    for container in stack.containers():
        ports = [b for bindings in container["NetworkSettings"]["Ports"].values() if bindings for b in bindings]
        assert {b["HostIp"] for b in ports} <= {"127.0.0.1"}, f"{container['Name']} is published beyond loopback"


def test_three_hundred_tasks_from_the_host_are_answered_once_each_and_spread_over_every_worker(
    stack: ComposeStack, peer: LoadPeer,
) -> None:
    conversation = f"deploy-{uuid.uuid4().hex[:8]}"
    peer.follow(f"/conversations/{conversation}/#")
    tasks = [peer.send("echo", conversation, f"task {i}") for i in range(TASKS)]
    peer.flush()
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=120)
    assert answered and peer.tally(tasks, "echo") == exactly_once(TASKS), peer.tally(tasks, "echo")
    # Heartbeats carry each worker's count every 2 s.
    wait_for(lambda: sum(processed(stack).values()) >= TASKS, 20, lambda: f"workers report {processed(stack)}")
    counts = processed(stack)
    print(f"tasks per worker: {sorted(counts.values())}")
    assert sum(counts.values()) == TASKS and len(counts) == WORKERS and min(counts.values()) > 0, counts


def test_prometheus_scrapes_the_web_app_loads_our_alert_rules_and_sees_every_worker(stack: ComposeStack) -> None:
    stack.compose("--profile", "monitoring", "up", "-d", "prometheus")

    def query(expression: str) -> list[dict[str, Any]]:
        status, body = stack.get(f"/api/v1/query?query={expression}", port="PROMETHEUS_HOST_PORT")
        return list(body["data"]["result"]) if status == 200 else []

    wait_for(lambda: [r["value"][1] for r in query("agent2389_worker_processes")] == [str(WORKERS)], 90,
             lambda: f"Prometheus did not scrape {WORKERS} workers: {query('up')}")
    assert [r["value"][1] for r in query('up{job="agent2389"}')] == ["1"]
    _, rules = stack.get("/api/v1/rules", port="PROMETHEUS_HOST_PORT")
    loaded = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
    shipped = {rule["alert"] for group in load_yaml(repo_path("config/prometheus/alerts.yml"))["groups"]
               for rule in group["rules"]}
    assert shipped and loaded == shipped


def test_flower_from_our_image_sees_every_worker_and_wants_its_login(stack: ComposeStack) -> None:
    stack.compose("--profile", "flower", "up", "-d", "flower")
    url = f"http://127.0.0.1:{stack.ports['FLOWER_HOST_PORT']}/api/workers?refresh=1"
    user, password = stack.env["FLOWER_BASIC_AUTH"].split(":", 1)
    login = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def workers_seen() -> set[str]:
        status, body = http_json(url, {"Authorization": login})
        return set(body) if status == 200 and isinstance(body, dict) else set()

    wait_for(lambda: len(workers_seen()) == WORKERS, 90,
             lambda: f"Flower did not list {WORKERS} workers: {workers_seen()}")
    # Celery names each worker after its container's host name (and its pid).
    hosts = {c["Config"]["Hostname"] for c in stack.containers("worker")}
    assert all(sum(host in name for name in workers_seen()) == 1 for host in hosts), (hosts, workers_seen())
    assert http_json(url, {})[0] == 401
    assert http_json(url, {"Authorization": "Basic " + base64.b64encode(b"ops:guessed").decode()})[0] == 401


def test_a_worker_killed_with_sigkill_has_the_tasks_it_held_answered_once_by_the_others(
    stack: ComposeStack, peer: LoadPeer,
) -> None:
    conversation = f"deploy-kill-{uuid.uuid4().hex[:8]}"
    peer.follow(f"/conversations/{conversation}/#")
    tasks = [peer.send("slow", conversation, f"slow {i}") for i in range(30)]
    peer.flush()
    holding: dict[str, Any] = {}

    def someone_holds_tasks() -> bool:
        busy = [w for w in stack.workers() if w["active"] > 0]
        holding.update(busy[0] if busy else {})
        return bool(busy)

    wait_for(someone_holds_tasks, 20, "no worker reported a slow task in progress", poll_s=0.2)
    [victim] = [c for c in stack.containers("worker") if c["Config"]["Hostname"] == holding["host"]]
    kill = [stack.docker, "kill", "--signal", "KILL", victim["Id"]]
    subprocess.run(kill, check=True, capture_output=True, timeout=30)
    killed = time.monotonic()
    # Its tasks were never acknowledged: they return after the visibility timeout (30 s) to the others.
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=90)
    print(f"the killed worker held {holding['active']} task(s); all 30 answered "
          f"{time.monotonic() - killed:.0f} s after the kill")
    assert answered and peer.tally(tasks, "slow") == exactly_once(30), peer.tally(tasks, "slow")
    [after] = [c for c in stack.containers("worker", running_only=False) if c["Id"] == victim["Id"]]
    assert not after["State"]["Running"] and after["State"]["ExitCode"] == 137, after["State"]
    assert after["RestartCount"] == victim["RestartCount"], "the killed worker came back and may have answered"
    # What the operator does next: compose starts the stopped container again.
    stack.compose("up", "-d", "--scale", f"worker={WORKERS}")
    wait_for(lambda: stack.online_workers() == WORKERS, 90, lambda: f"/health: {stack.health()}")


def test_after_redis_restarts_the_stack_is_healthy_again_and_answers_every_task_once(
    stack: ComposeStack, peer: LoadPeer,
) -> None:
    completed_before = completed(stack, "echo")
    stack.compose("restart", "redis")
    wait_for(lambda: stack.health().get("status") == "healthy" and stack.online_workers() == WORKERS, 90,
             lambda: f"/health after the Redis restart: {stack.health()}")
    conversation = f"deploy-redis-{uuid.uuid4().hex[:8]}"
    peer.follow(f"/conversations/{conversation}/#")
    tasks = [peer.send("echo", conversation, f"after {i}") for i in range(100)]
    peer.flush()
    assert peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=90), peer.tally(tasks, "echo")
    assert peer.tally(tasks, "echo") == exactly_once(100)
    # The append-only file kept Redis' data: the counts from before the restart went on from where they were.
    wait_for(lambda: completed(stack, "echo") >= completed_before + 100, 20, "echo's count did not go on")
    assert completed_before >= TASKS and completed(stack, "echo") == completed_before + 100


def completed(stack: ComposeStack, agent: str) -> int:
    status, body = stack.get("/api/agents")
    assert status == 200, body
    return sum(int(a["tasks_completed"]) for a in body["agents"] if a["agent"] == agent)


def test_down_stops_every_container_with_exit_code_0_within_its_grace_period(stack: ComposeStack) -> None:
    services = load_yaml(repo_path("docker-compose.yml"))["services"]
    running = {c["Id"]: c["Config"]["Labels"]["com.docker.compose.service"] for c in stack.containers()}
    assert len(running) >= 6, running  # broker, Redis, bridge, 3 workers, web (and Prometheus, Flower)
    since = time.time()
    stack.compose("down", timeout_s=240)
    events = docker_events(stack, since, time.time())
    report = {}
    for container, service in running.items():
        mine = [e for e in events if e["id"] == container]
        signals = [e["Actor"]["Attributes"].get("signal") for e in mine if e["Action"] == "kill"]
        died = next((e for e in mine if e["Action"] == "die"), None)
        assert died is not None, f"{service} did not stop"
        took = (died["timeNano"] - min(e["timeNano"] for e in mine)) / 1e9
        report[f"{service} {container[:6]}"] = (died["Actor"]["Attributes"]["exitCode"], round(took, 1))
        assert "9" not in signals, f"{service} was killed after its grace period"
        assert died["Actor"]["Attributes"]["exitCode"] == "0", f"{service}: {died}"
        assert took <= grace_seconds(services[service]), f"{service} took {took:.1f} s to stop"
    print(f"down: exit code and seconds from SIGTERM, per container: {report}")


def docker_events(stack: ComposeStack, since: float, until: float) -> list[dict[str, Any]]:
    """The project's containers' kill and die events between the two times, oldest first."""
    command = [stack.docker, "events", "--since", f"{since:.3f}", "--until", f"{until + 1:.3f}",
               "--filter", f"label=com.docker.compose.project={stack.project}", "--filter", "type=container",
               "--filter", "event=kill", "--filter", "event=die", "--format", "{{json .}}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_with_the_password_override_agents_log_in_and_anonymous_clients_are_refused(
    docker: tuple[str, str], tmp_path: Path,
) -> None:
    logins = tmp_path / "mqtt-auth"
    made = subprocess.run(["bash", str(repo_path("scripts/generate-mqtt-password.sh")), "--out", str(logins)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    stack = ComposeStack(*docker, overrides=(repo_path("docker-compose.auth.yml"),),
                         env={"MQTT_AUTH_DIR": str(logins)})
    with running(stack, "up", "-d"):
        wait_for(lambda: stack.health().get("status") == "healthy", 120, lambda: f"/health: {stack.health()}")
        login = dict(line.split("=", 1) for line in (logins / "agents.env").read_text().splitlines())
        with_login = MqttSection(broker_url=stack.mqtt_url, username_env="MQTT_USERNAME",
                                 password_env="MQTT_PASSWORD")
        assert connects(with_login, login)
        assert not connects(MqttSection(broker_url=stack.mqtt_url))
        assert not connects(with_login, {**login, "MQTT_PASSWORD": "guessed"})
        # As the README has users try a deployment: a task injected from inside, with the agents' login.
        answer = stack.compose("exec", "-T", "web", "agent2389", "inject", "--config", "/etc/agent2389",
                               "--agent", "echo", "--wait", "20", "--json", "hello through a login")
        assert "hello through a login" in json.dumps(json.loads(answer.stdout)), answer.stdout
