"""Finding, or starting, the real Redis and Mosquitto the tests talk to (agent2389.ops.local_services starts them)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent2389.ops.local_services import LocalService, ServiceError, answers, free_port, mosquitto_conf, redis_command

__all__ = ["IN_CI", "Service", "find_or_start", "free_port", "mosquitto_command", "redis_command"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# How to start one on a port and in a directory of its own, from the binary found on PATH.
CommandFor = Callable[[str, int, Path], list[str]]


@dataclass
class Service:
    name: str
    host: str
    port: int
    started: LocalService | None = None

    def stop(self) -> None:
        if self.started is not None:
            self.started.stop()


def mosquitto_command(binary: str, port: int, workdir: Path) -> list[str]:
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port))
    return [binary, "-c", str(conf)]


def find_or_start(name: str, url: str, binary: str, command_for: CommandFor) -> Service:
    """The service at ``url`` if it answers; locally, else one started from ``binary`` on a free port.

    Under CI=true a missing service fails the run: CI must start it (see .ci/run).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 0
    if answers(host, port):
        return Service(name, host, port)
    if IN_CI:
        pytest.fail(f"{name} is not answering at {host}:{port} and CI=true: start it before the tests")
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{name} is not answering at {host}:{port} and no {binary} binary is on PATH to start one")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"agent2389-{name}-"))
    service = LocalService(name, command_for(path, port, workdir), port, workdir)
    try:
        service.start(timeout_s=10)
    except ServiceError as exc:
        pytest.fail(f"started {binary} but {exc}")
    return Service(name, "127.0.0.1", port, service)
