"""Redis and Mosquitto of one test's own, on free ports, so a scenario may restart, pause or stop them.

The shared services at :6379 and :1883 serve every other test at the same time: never break those.
Both run the way the project ships them (docker-compose.yml's Redis flags, config/mosquitto's
mosquitto.conf), so a scenario also proves that the shipped broker settings keep what they promise.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent2389.ops.embedded import answers
from tests.conftest import REPO
from tests.services import free_port

SHIPPED_MOSQUITTO_CONF = REPO / "config" / "mosquitto" / "mosquitto.conf"
# The Redis flags of docker-compose.yml: no eviction (a dropped queue key is a lost task) and an
# append-only file, so queued tasks survive a restart.
SHIPPED_REDIS_FLAGS = ["--maxmemory-policy", "noeviction", "--appendonly", "yes", "--save", ""]


@dataclass
class PrivateService:
    name: str
    command: list[str]
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log: list[str] = field(default_factory=list)

    def start(self, timeout_s: float = 10) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is already running"
        with (self.workdir / f"{self.name}.out").open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout_s
        while not answers("127.0.0.1", self.port, timeout_s=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"private {self.name} did not listen on port {self.port}")
            time.sleep(0.05)
        self.log.append(f"{time.time():.3f} started")

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 10) -> None:
        """Stop it (SIGTERM lets it save its data first; SIGKILL does not)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.append(f"{time.time():.3f} stopped with {signal.Signals(signum).name}")

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def pause(self) -> None:
        """Freeze the process: connections stay open and nothing answers, the nastiest kind of outage."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.log.append(f"{time.time():.3f} paused")

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.log.append(f"{time.time():.3f} resumed")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def private_redis(workdir: Path) -> PrivateService:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: the fault scenarios need a Redis of their own")
    workdir.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), *SHIPPED_REDIS_FLAGS]
    return PrivateService("redis", command, port, workdir)


def private_mosquitto(workdir: Path) -> PrivateService:
    port = free_port()
    binary = shutil.which("mosquitto")
    if binary is None:
        pytest.skip("mosquitto is not installed: the fault scenarios need a broker of their own")
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port, workdir))
    return PrivateService("mosquitto", [binary, "-c", str(conf)], port, workdir)


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
