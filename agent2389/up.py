"""``agent2389 up``: the bridge, N workers and the web app in the foreground, for development and demos.

Ctrl-C (or SIGTERM) stops them in order: the bridge first (no new intake; agents announced
unavailable), then the workers (they finish what they hold), then the web app and embedded services.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from types import FrameType

from agent2389.embedded import EmbeddedService, ensure_mqtt, ensure_redis
from agent2389.settings import Settings

log = logging.getLogger("agent2389.up")


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    embedded: list[EmbeddedService] = []
    env = dict(os.environ)
    if not args.no_embedded:
        try:
            embedded = _embedded_services(settings, env)
        except RuntimeError as exc:
            log.error("%s", exc)
            return 1
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    base = [sys.executable, "-m", "agent2389.cli"]
    config = ["--config", str(args.config)]
    env["HEALTH_PORT"] = str(args.port)
    for index in range(args.workers):
        children.append((f"worker-{index + 1}", _spawn([*base, "worker", *config, "--concurrency",
                                                         str(args.concurrency)], env)))
    children.append(("web", _spawn([*base, "web", *config, "--port", str(args.port)], env)))
    children.append(("bridge", _spawn([*base, "bridge", *config], env)))
    log.info("agent2389 is up: %d worker(s), agents %s; health at http://127.0.0.1:%d/health; Ctrl-C stops",
             args.workers, ", ".join(a.id for a in settings.agents), args.port)
    exit_code = 0
    while not stop.wait(0.5):
        dead = [(name, p.returncode) for name, p in children if p.poll() is not None]
        if dead:
            log.error("%s exited with code %s; stopping everything", dead[0][0], dead[0][1])
            exit_code = 1
            break
    _stop_in_order(children)
    for service in reversed(embedded):
        service.stop()
    log.info("agent2389 stopped")
    return exit_code


def _embedded_services(settings: Settings, env: dict[str, str]) -> list[EmbeddedService]:
    started = []
    redis_service = ensure_redis(settings.redis_url)
    if redis_service is not None:
        started.append(redis_service)
    mqtt_service = ensure_mqtt(settings.agents[0].mqtt)
    if mqtt_service is not None:
        started.append(mqtt_service)
        if mqtt_service.protocol:
            env["AGENT2389_MQTT_PROTOCOL"] = mqtt_service.protocol
    return started


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Children ignore the terminal's Ctrl-C; this process stops them in order instead.
    return subprocess.Popen(command, env=env, start_new_session=True)


def _stop_in_order(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    stages = [
        [child for child in children if child[0] == "bridge"],
        [child for child in children if child[0].startswith("worker")],
        [child for child in children if child[0] == "web"],
    ]
    for stage in stages:
        for _name, process in stage:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in stage:
            try:
                process.wait(45)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                process.kill()
