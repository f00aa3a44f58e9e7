"""docker-compose.yml run for real by Compose v1, from the host: ports, commands, containers, HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.deploy.conftest import require_tool, seconds
from tests.services import IN_CI, free_port

IMAGE = "agent2389:deploy-test"
OVERRIDE = Path(__file__).parent / "stack" / "docker-compose.test.yml"
SLOW_AGENT = Path(__file__).parent / "stack" / "slow.toml"
# Docker's own default when a service sets no stop_grace_period.
DEFAULT_GRACE_S = 10.0


def require_docker() -> tuple[str, str]:
    """The docker and docker-compose commands, with a daemon that answers (scripts/docker-host.sh)."""
    why = "make test-deploy runs scripts/docker-host.sh first, which installs it"
    docker = require_tool("docker", why)
    compose = require_tool("docker-compose", why)
    answer = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                            timeout=30)
    if answer.returncode != 0:
        message = f"no Docker daemon answers ({answer.stderr.strip()[:200]}): run scripts/docker-host.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return docker, compose


def build_image(docker: str) -> float:
    """Seconds `docker build` took. The classic builder: it needs no frontend image from a registry."""
    started = time.monotonic()
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    result = subprocess.run([docker, "build", "-q", "-t", IMAGE, str(REPO)], capture_output=True, text=True,
                            env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return time.monotonic() - started


def agents_folder(target: Path) -> Path:
    """config/deploy's agent files and the slow agent, readable by the image's user (uid 10001)."""
    target.mkdir()
    for source in [*sorted((REPO / "config" / "deploy").glob("*.toml")), SLOW_AGENT]:
        shutil.copy(source, target / source.name)
        (target / source.name).chmod(0o644)
    target.chmod(0o755)
    return target


@dataclass
class ComposeStack:
    """One compose project of docker-compose.yml and overrides, with its own name and host ports."""

    docker: str
    compose_command: str
    overrides: tuple[Path, ...]
    env: dict[str, str]
    project: str = field(default_factory=lambda: f"agent2389-deploy-test-{uuid.uuid4().hex[:6]}")
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    ports: dict[str, int] = field(default_factory=lambda: {
        name: free_port() for name in ("MQTT_HOST_PORT", "REDIS_HOST_PORT", "WEB_HOST_PORT", "PROMETHEUS_HOST_PORT",
                                       "FLOWER_HOST_PORT")
    })

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.ports['MQTT_HOST_PORT']}"

    def compose(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **{k: str(v) for k, v in self.ports.items()}, **self.env, "AGENT2389_IMAGE": IMAGE,
               "WEB_AUTH_TOKEN": self.token}
        files = [arg for path in (REPO / "docker-compose.yml", *self.overrides) for arg in ("-f", str(path))]
        command = [self.compose_command, "-p", self.project, *files, *args]
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout_s)
        assert result.returncode == 0, f"{' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        return result

    def docker_json(self, *args: str) -> Any:
        result = subprocess.run([self.docker, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def containers(self, service: str | None = None, running_only: bool = True) -> list[dict[str, Any]]:
        """`docker inspect` of the project's containers (of one service)."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        listed = subprocess.run([self.docker, "ps", "-q", *filters, *([] if running_only else ["-a"])],
                                capture_output=True, text=True, timeout=60)
        ids = listed.stdout.split()
        return list(self.docker_json("inspect", *ids)) if ids else []

    def get(self, path: str, port: str = "WEB_HOST_PORT") -> tuple[int, Any]:
        """Status and JSON body of a GET on a published port, with the web app's bearer token."""
        return http_json(f"http://127.0.0.1:{self.ports[port]}{path}", {"Authorization": f"Bearer {self.token}"})

    def health(self) -> dict[str, Any]:
        return self.get("/health")[1] or {}

    def online_workers(self) -> int:
        return int(self.health().get("checks", {}).get("workers", {}).get("online", -1))

    def workers(self) -> list[dict[str, Any]]:
        status, body = self.get("/api/workers")
        assert status == 200, body
        return [w for w in body["workers"] if w["online"]]

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}").stdout


def http_json(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    """Status and JSON body of a GET (None for a body that is not JSON; status 0 when nothing answered)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, parsed(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, parsed(error.read())
    except OSError:
        return 0, None


def parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def grace_seconds(service: dict[str, Any]) -> float:
    return seconds(service["stop_grace_period"]) if "stop_grace_period" in service else DEFAULT_GRACE_S


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str | Callable[[], str],
             poll_s: float = 0.5) -> float:
    """Seconds until the condition held; fails with ``what`` (called then, if it is a function, so it
    can show the state at the end) when it did not within the time."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started >= timeout_s:
            raise AssertionError(f"{what() if callable(what) else what} (waited {timeout_s} s)")
        time.sleep(poll_s)
    return time.monotonic() - started
