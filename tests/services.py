"""Finding, or starting, the real Redis and Mosquitto the tests talk to."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent2389.ops.embedded import answers

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class Service:
    name: str
    host: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(host: str, port: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(host, port):
            return True
        time.sleep(0.05)
    return False


def find_or_start(name: str, url: str, binary: str, args: list[str]) -> Service:
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
    command = [path, *[a.format(port=port, tmp=tempfile.mkdtemp(prefix=f"agent2389-{name}-")) for a in args]]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not _wait_until_listening("127.0.0.1", port):
        process.kill()
        pytest.fail(f"started {binary} but it did not listen on port {port}")
    return Service(name, "127.0.0.1", port, process)


def mosquitto_config(tmp: Path, port: int) -> Path:
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
        "max_inflight_messages 1000\nmax_queued_messages 100000\n"
    )
    return conf
