"""Celery's own tools against a running stack, as an operator runs them: the `celery` command and Flower."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.e2e.stack import Process, Stack, wait_until
from tests.services import free_port

FLOWER_USER, FLOWER_PASSWORD = "operator", "flower-test-password"


def celery(stack: Stack, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    """``celery -A agent2389 ARGS`` in the stack's environment (its Redis and key prefix)."""
    return subprocess.run([sys.executable, "-m", "celery", "-A", "agent2389", *args], env=stack.env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout_s, check=False)


class Flower:
    """``celery -A agent2389 flower`` with basic auth from the environment, as docker compose runs it."""

    def __init__(self, stack: Stack, log_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log_path = log_dir / "flower.log"
        log_file = log_path.open("wb")
        env = {**stack.env(), "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}"}
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "agent2389", "flower", f"--port={self.port}", "--address=127.0.0.1"],
            env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
        self.process = Process("flower", popen, log_path, log_file)
        wait_until(self._healthy, 30, "Flower answers /healthcheck")

    def get(self, path: str, auth: bool = True) -> Any:
        return json.loads(self.request("GET", path, auth))

    def post(self, path: str) -> Any:
        return json.loads(self.request("POST", path, True))

    def request(self, method: str, path: str, auth: bool) -> bytes:
        request = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None)
        if auth:
            token = b64encode(f"{FLOWER_USER}:{FLOWER_PASSWORD}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            body: bytes = response.read()
            return body

    def task_of(self, protocol_task_id: str) -> dict[str, Any] | None:
        """Flower's record of the Celery task that carries the 2389 task ``protocol_task_id``."""
        tasks: dict[str, dict[str, Any]] = self.get("/api/tasks")
        for task in tasks.values():
            if protocol_task_id in str(task.get("args")):
                return task
        return None

    def stop(self) -> None:
        self.process.stop()

    def _healthy(self) -> bool:
        assert self.process.popen.poll() is None, "Flower exited at start-up"
        try:
            return self.request("GET", "/healthcheck", auth=False) == b"OK"
        except (urllib.error.URLError, ConnectionError):
            return False
