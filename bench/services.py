"""The services a benchmark runs against: a private Mosquitto with TCP_NODELAY, and the real Redis.

A private broker keeps the bench's persistent sessions and retained statuses away from everyone else's,
and lets the bench set ``set_tcp_nodelay true`` whatever the shared broker's configuration says.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from agent2389.ops.local_services import LocalService, ServiceError, free_port, mosquitto_conf


class BenchError(Exception):
    """The bench cannot run (a service is missing or a process did not come up)."""


def start_broker(workdir: Path, binary: str = "mosquitto") -> LocalService:
    """A Mosquitto of the bench's own on a free port, its configuration in ``workdir``."""
    path = shutil.which(binary)
    if path is None:
        raise BenchError(f"no {binary} binary on PATH: the bench starts a Mosquitto of its own")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port, max_queued_messages=1_000_000, quiet=True))
    try:
        return LocalService("mosquitto", [path, "-c", str(conf)], port, workdir).start(timeout_s=10)
    except ServiceError as exc:
        raise BenchError(str(exc)) from None


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
