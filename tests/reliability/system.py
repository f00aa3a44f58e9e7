"""The system under test: bridge, workers and web app as real processes, and what Redis says about them."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from agent2389.celery_app import create_celery
from agent2389.config.settings import Settings
from agent2389.protocol.envelope import TaskEnvelope
from agent2389.state.keys import Keys
from tests.e2e.stack import Process, Stack
from tests.reliability.peer import LoadPeer
from tests.services import free_port


@dataclass
class FaultStack(Stack):
    """tests.e2e.stack.Stack with settings of the scenario's choosing (visibility timeout, extra environment)."""

    visibility_timeout_s: int = 6
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = 0

    def env(self) -> dict[str, str]:
        return {**super().env(), "AGENT2389_VISIBILITY_TIMEOUT": str(self.visibility_timeout_s), **self.extra_env}

    def web(self) -> Process:
        """The web app, answering /live. A free port can be taken (by another test's outgoing connection,
        say) before the app binds it: the app then exits, and gets another port here, so a scenario never
        runs without the web app it asserts on at the end."""
        for _ in range(3):
            self.web_port = free_port()
            process = self.start("web", "--port", str(self.web_port), "--host", "127.0.0.1")
            if self._serves(process):
                return process
        raise AssertionError(f"the web app did not start: {process.log_path.read_text(errors='replace')[-2000:]}")

    def live(self, kind: str) -> list[Process]:
        return [p for p in self.processes if p.name.startswith(f"{kind}-") and p.popen.poll() is None]

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)

    def backlog(self, agent_id: str) -> tuple[int, int]:
        """(tasks waiting in the agent's queue, tasks delivered to a worker and not yet acknowledged)."""
        keys = Keys(self.key_prefix)
        client = self.redis()
        try:
            waiting = sum(int(client.llen(name)) for name in keys.queue_lists(agent_id))
            unacked = int(client.hlen(f"{keys.celery_prefix()}unacked"))
        finally:
            client.close()
        return waiting, unacked

    def in_flight(self) -> int:
        client = self.redis()
        try:
            return int(client.zcard(Keys(self.key_prefix).in_flight()))
        finally:
            client.close()

    def http(self, path: str) -> tuple[int, dict[str, Any]]:
        """(status code, JSON body) of the web app; (0, {}) when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=3) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            return 0, {}

    def wait_http(self, path: str, status: int, timeout_s: float) -> tuple[float, dict[str, Any]]:
        """Seconds until ``path`` answered ``status``, and that answer."""
        started = time.monotonic()
        deadline = started + timeout_s
        code, body = self.http(path)
        while code != status:
            assert time.monotonic() < deadline, (f"{path} still answers {code} after {timeout_s} s: {body}; "
                                                 f"{self._web_state()}")
            time.sleep(0.25)
            code, body = self.http(path)
        return time.monotonic() - started, body

    def _serves(self, web: Process) -> bool:
        becomes(lambda: web.popen.poll() is not None or self.http("/live")[0] == 200, 30)
        return web.popen.poll() is None

    def _web_state(self) -> str:
        webs = [p for p in self.processes if p.name.startswith("web-")]
        if not webs:
            return "no web app was started"
        exit_code = webs[-1].popen.poll()
        return "the web app is running" if exit_code is None else f"the web app exited with {exit_code}"

    def wait_drained(self, agent_id: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (backlog := self.backlog(agent_id)) != (0, 0):
            assert time.monotonic() < deadline, f"queue of {agent_id} not drained: (waiting, unacked) = {backlog}"
            time.sleep(0.25)


def rss_mib(pid: int) -> float:
    """Resident memory of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def bring_up(stack: FaultStack, peer: LoadPeer, agent_ids: list[str], conversation: str,
             workers: list[tuple[str, ...]], web: bool = True) -> None:
    """Web app, workers and bridge started, every agent announced ``available`` with all its workers."""
    for agent_id in agent_ids:
        peer.follow(f"/control/agents/{agent_id}/status")
    peer.follow(f"/conversations/{conversation}/#")
    if web:
        stack.web()
    for args in workers:
        stack.worker(*args)
    stack.bridge()
    for agent_id in agent_ids:
        peer.wait_for_status(agent_id, "available", timeout_s=30, workers=len(workers))


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    assert becomes(condition, timeout_s), f"{what} (waited {timeout_s} s)"
    return time.monotonic() - started


def becomes(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Whether the condition holds within the time: for tests that try again when it does not."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def assert_healthy(stack: FaultStack, agent_ids: list[str], timeout_s: float = 30) -> dict[str, Any]:
    """The system is whole again: nothing waiting or held, and the web app's /health says healthy."""
    for agent_id in agent_ids:
        stack.wait_drained(agent_id, timeout_s)
    assert stack.live("bridge"), "the bridge is not running"
    _, body = stack.wait_http("/health", 200, timeout_s)
    assert body["status"] == "healthy"
    return body


class Supervisor:
    """Keeps ``count`` workers running, as Kubernetes or compose's restart policy would."""

    def __init__(self, stack: FaultStack, count: int, *args: str) -> None:
        self._stack = stack
        self._count = count
        self._args = args
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)

    def __enter__(self) -> Supervisor:
        for _ in range(self._count - len(self._stack.live("worker"))):
            self._stack.worker(*self._args)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stopping.wait(0.5):
            for _ in range(self._count - len(self._stack.live("worker"))):
                self.restarts += 1
                self._stack.worker(*self._args)


def trace(stack: FaultStack, task_ids: list[str], limit: int = 5) -> str:
    """Every log line of every process that names one of the tasks: the story of a lost task."""
    story = []
    for task_id in task_ids[:limit]:
        story.append(f"--- {task_id}")
        for process in stack.processes:
            for line in process.log_lines():
                if task_id in json.dumps(line):
                    fields = line.get("fields", {})
                    story.append(f"{line.get('timestamp')} {process.name}: {fields.get('message')} {fields}")
    return "\n".join(story)


def missing(peer: LoadPeer, envelopes: list[dict[str, Any]]) -> list[str]:
    return [e["task_id"] for e in envelopes if not peer.answers.get(e["task_id"])]


def hold_restore_lock_like_a_dead_worker(stack: FaultStack) -> float:
    """Take kombu's restore lock the way a worker killed in the middle of a restore sweep leaves it.

    Every live worker skips its sweep while the lock is held, so tasks of dead workers stay unacknowledged
    until it expires. Returns the lock's lifetime in seconds.
    """
    settings = Settings(redis_url=stack.redis_url, key_prefix=stack.key_prefix,
                        visibility_timeout_s=stack.visibility_timeout_s)
    with create_celery(settings).connection_for_write() as connection:
        qos = connection.default_channel.qos
        lock = qos.channel.client.lock(qos.unacked_mutex_key, timeout=qos.unacked_mutex_expire)
        assert lock.acquire(blocking=False), "the restore lock was already held"
        return float(qos.unacked_mutex_expire)


def ledger_state(stack: FaultStack, envelope: dict[str, Any]) -> str | None:
    """What the shared ledger says about one task: claiming, queued, done, failed or nothing yet."""
    return ledger_entry(stack, envelope)[0]


def ledger_entry(stack: FaultStack, envelope: dict[str, Any]) -> tuple[str | None, int]:
    """(state, attempts) of one task in the shared ledger."""
    client = stack.redis()
    try:
        key = Keys(stack.key_prefix).ledger(TaskEnvelope.model_validate(envelope).pipeline_fingerprint())
        state, attempts = client.hmget(key, ["state", "attempts"])
        return (state.decode() if isinstance(state, bytes) else state), int(attempts or 0)
    finally:
        client.close()


def published_by_workers(stack: FaultStack) -> Counter[str]:
    """How many times the workers published an outcome for each task id (their "task completed/failed" lines)."""
    counts: Counter[str] = Counter()
    for process in stack.processes:
        if process.name.startswith("worker-"):
            for line in process.log_lines():
                if line.get("fields", {}).get("message") in ("task completed", "task failed"):
                    counts[str(line.get("span", {}).get("task_id"))] += 1
    return counts
