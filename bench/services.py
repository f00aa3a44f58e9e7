"""The services a benchmark runs against: a private Mosquitto with TCP_NODELAY, and the real Redis.

A private broker keeps the bench's persistent sessions and retained statuses away from everyone else's,
and lets the bench set ``set_tcp_nodelay true`` whatever the shared broker's configuration says.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from agent2389.ops.embedded import answers
from tests.services import free_port

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_inflight_messages 1000
max_queued_messages 1000000
persistence false
log_dest none
"""


class BenchError(Exception):
    """The bench cannot run (a service is missing or a process did not come up)."""


def wait_until_listening(port: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not answers("127.0.0.1", port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass
class Broker:
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_broker(binary: str = "mosquitto") -> Broker:
    path = shutil.which(binary)
    if path is None:
        raise BenchError(f"no {binary} binary on PATH: the bench starts a Mosquitto of its own")
    directory = Path(tempfile.mkdtemp(prefix="agent2389-bench-mqtt-"))
    port = free_port()
    conf = directory / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port))
    process = subprocess.Popen([path, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_until_listening(port):
        process.kill()
        raise BenchError(f"mosquitto did not listen on port {port}")
    return Broker(port, process, directory)


def redis_pid(redis_url: str) -> int | None:
    """The Redis server's pid when it runs on this machine (its CPU is part of every task's cost)."""
    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("server")
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {redis_url} does not answer ({type(exc).__name__})") from None
    finally:
        client.close()
    pid = info.get("process_id")
    return int(pid) if pid and Path(f"/proc/{pid}").exists() else None


def delete_keys(redis_url: str, prefix: str) -> int:
    """Remove every key a run left under its prefix (ledger entries, timelines, stats, queues)."""
    client = redis.Redis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=2000):
            batch.append(key)
            if len(batch) >= 2000:
                deleted += int(client.unlink(*batch))
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))
    finally:
        client.close()
    return deleted
