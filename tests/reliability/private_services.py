"""Redis and Mosquitto of one test's own, on free ports, so a scenario may restart, pause or stop them.

The shared services at :6379 and :1883 serve every other test at the same time: never break those.
Both run the way the project ships them (docker-compose.yml's Redis flags, config/mosquitto's
mosquitto.conf), so a scenario also proves that the shipped broker settings keep what they promise.
They are agent2389.ops.local_services' LocalService, which starts, stops, pauses and resumes them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent2389.ops.local_services import LocalService, free_port, redis_command
from tests.conftest import REPO
from tests.services import IN_CI

# The name the scenarios know them by.
PrivateService = LocalService

SHIPPED_MOSQUITTO_CONF = REPO / "config" / "mosquitto" / "mosquitto.conf"
# The Redis flags of docker-compose.yml: no eviction (a dropped queue key is a lost task) and an
# append-only file, so queued tasks survive a restart.
SHIPPED_REDIS_FLAGS = ("--maxmemory-policy", "noeviction", "--appendonly", "yes", "--save", "")


def private_redis(workdir: Path) -> PrivateService:
    binary, port = _binary_and_port("redis-server", "a Redis", workdir)
    return LocalService("redis", redis_command(binary, port, workdir, SHIPPED_REDIS_FLAGS), port, workdir,
                        output=workdir / "redis.out")


def private_mosquitto(workdir: Path) -> PrivateService:
    binary, port = _binary_and_port("mosquitto", "a broker", workdir)
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port, workdir))
    return LocalService("mosquitto", [binary, "-c", str(conf)], port, workdir, output=workdir / "mosquitto.out")


def _binary_and_port(name: str, what: str, workdir: Path) -> tuple[str, int]:
    binary = shutil.which(name)
    if binary is None:
        message = f"{name} is not installed: the fault scenarios need {what} of their own"
        if IN_CI:  # CI must install it (.ci/run): a missing server fails the run there, never skips
            pytest.fail(message)
        pytest.skip(message)
    workdir.mkdir(parents=True, exist_ok=True)
    return binary, free_port()


def mosquitto_conf(port: int, workdir: Path) -> str:
    """The shipped configuration, moved to ``port`` and ``workdir``; everything else as shipped."""
    replacements = {
        "listener 1883": f"listener {port} 127.0.0.1",
        "persistence_location /mosquitto/data/": f"persistence_location {workdir}/",
        "log_dest stdout": f"log_dest file {workdir}/mosquitto.log",
    }
    lines = SHIPPED_MOSQUITTO_CONF.read_text().splitlines()
    missing = [old for old in replacements if old not in lines]
    assert not missing, f"{SHIPPED_MOSQUITTO_CONF} changed; update the test harness for: {missing}"
    text = "\n".join(replacements.get(line, line) for line in lines)
    # As root, Mosquitto would switch to its own user, who cannot enter pytest's private temp directories.
    return text + ("\nuser root\n" if os.geteuid() == 0 else "\n")
