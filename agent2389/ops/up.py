"""``agent2389 up``: the bridge, N workers and the web app in the foreground, for development and demos.

``up`` supervises them (agent2389.ops.supervisor): one that dies is restarted with backoff and counted in
``/metrics`` and ``status``. It says "is up" only once the web app reports the system ready, and names
what it is still waiting for until then. Ctrl-C (or SIGTERM) stops them in order: the bridge first (no
new intake; agents announced unavailable), then the workers (they finish what they hold), then the web
app and embedded services.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from types import FrameType

import redis

from agent2389.config import environment
from agent2389.config.settings import Settings
from agent2389.ops.embedded import ensure_mqtt, ensure_redis
from agent2389.ops.local_services import LocalService
from agent2389.ops.processes import agent2389_command
from agent2389.ops.readiness import ReadinessWatch
from agent2389.ops.supervisor import CANNOT_START, Supervisor
from agent2389.state.keys import Keys
from agent2389.state.redis_client import connect_redis

log = logging.getLogger("agent2389.up")


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    taken = port_problem(args.port)
    if taken is not None:
        print(f"agent2389 up: {taken}", file=sys.stderr)
        return CANNOT_START
    env = dict(os.environ)
    try:
        embedded = [] if args.no_embedded else _embedded_services(settings, env)
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    stop = _stop_on_signals()
    supervisor = _start_processes(args, settings, env)
    log.info("agent2389 is starting: %d worker(s), agents %s; Ctrl-C stops", args.workers,
             ", ".join(a.id for a in settings.agents))
    problem = _watch(supervisor, ReadinessWatch(settings, args.port), stop, args, settings)
    if problem is not None:
        log.error("%s; stopping everything", problem)
    supervisor.stop_in_order([lambda name: name == "bridge", lambda name: name.startswith("worker"),
                              lambda name: name == "web"])
    for service in reversed(embedded):
        service.stop()
    log.info("agent2389 stopped")
    return 0 if problem is None else 1


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def _start_processes(args: argparse.Namespace, settings: Settings, env: dict[str, str]) -> Supervisor:
    restarts = RestartCounter(settings)
    supervisor = Supervisor(lambda command: _spawn(command, env), on_restart=restarts.record)
    env[environment.WEB_PORT] = str(args.port)
    for index in range(args.workers):
        supervisor.start(f"worker-{index + 1}",
                         agent2389_command("worker", args.config, "--concurrency", str(args.concurrency)))
    supervisor.start("web", agent2389_command("web", args.config, "--port", str(args.port)))
    supervisor.start("bridge", agent2389_command("bridge", args.config))
    return supervisor


def _watch(supervisor: Supervisor, readiness: ReadinessWatch, stop: threading.Event, args: argparse.Namespace,
           settings: Settings) -> str | None:
    """Until Ctrl-C, SIGTERM or a process that cannot be kept running (its problem); says "is up" once ready."""
    while not stop.wait(0.2):
        problem = supervisor.check()
        if problem is not None:
            return problem
        if readiness.poll():
            log.info("agent2389 is up: %d worker(s), agents %s; health at http://127.0.0.1:%d/health; Ctrl-C "
                     "stops", args.workers, ", ".join(a.id for a in settings.agents), args.port)
    return None


def port_problem(port: int) -> str | None:
    """Why the web app could not listen on ``port`` (as it does, on every interface), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 (the web app's own default bind)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} is already in use by another program; choose another with --port or "
                        "AGENT2389_WEB_PORT")
            return f"cannot listen on port {port} ({exc.strerror}); choose another with --port or AGENT2389_WEB_PORT"
    return None


class RestartCounter:
    """How often each process was restarted, kept in Redis for ``/metrics`` and ``status``."""

    def __init__(self, settings: Settings) -> None:
        self._key = Keys(settings.key_prefix).process_restarts()
        self._redis = connect_redis(settings)
        # The counts are this run's, as a process's own counters are.
        with contextlib.suppress(redis.RedisError):
            self._redis.delete(self._key)

    def record(self, name: str, count: int) -> None:
        try:
            self._redis.hset(self._key, name, count)
        except redis.RedisError as exc:
            log.warning("could not record the restart of %s (%s)", name, type(exc).__name__)


def _embedded_services(settings: Settings, env: dict[str, str]) -> list[LocalService]:
    started = []
    redis_service = ensure_redis(settings.redis_url)
    if redis_service is not None:
        started.append(redis_service)
    mqtt_service = ensure_mqtt(settings.agents[0].mqtt)
    if mqtt_service is not None:
        started.append(mqtt_service)
        if mqtt_service.protocol:
            env[environment.MQTT_PROTOCOL] = mqtt_service.protocol
    return started


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Children ignore the terminal's Ctrl-C; this process stops them in order instead.
    return subprocess.Popen(command, env=env, start_new_session=True)

