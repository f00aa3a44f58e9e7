"""Redis and Mosquitto started as processes on this machine, listening on loopback only.

The one way to start them: ``agent2389 up``'s embedded services (embedded.py), the benchmarks' private
broker (bench/services.py) and the tests' services (tests/services.py, tests/reliability) all build a
``LocalService`` and start it here.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
# A Redis for development: nothing on disk, and no eviction (an evicted queue key is a lost task).
DEVELOPMENT_REDIS_FLAGS = ("--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction")


class ServiceError(RuntimeError):
    """A local service could not be started."""


def answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def redis_command(binary: str, port: int, workdir: Path, flags: tuple[str, ...] = DEVELOPMENT_REDIS_FLAGS) -> list[str]:
    return [binary, "--port", str(port), "--bind", LOOPBACK, "--dir", str(workdir), *flags]


def mosquitto_conf(port: int, max_queued_messages: int = 100_000, quiet: bool = False) -> str:
    """An anonymous, in-memory broker tuned for many QoS 1 messages in flight (Nagle off: latency counts)."""
    return (f"listener {port} {LOOPBACK}\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n"
            f"max_inflight_messages 1000\nmax_queued_messages {max_queued_messages}\n"
            + ("log_dest none\n" if quiet else ""))


@dataclass
class LocalService:
    """A broker process on ``port``; ``start`` returns once it accepts connections."""

    name: str
    command: list[str]
    port: int
    workdir: Path
    # Where its output goes (None: discarded).
    output: Path | None = None
    # A session of its own: the terminal's Ctrl-C does not reach it, its owner stops it.
    own_session: bool = False
    # The MQTT protocol its clients must speak, when it is not MQTT 5.
    protocol: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 15) -> LocalService:
        if self.running():
            raise ServiceError(f"{self.name} is already running")
        self.process = self._spawn()
        deadline = time.monotonic() + timeout_s
        while not answers(LOOPBACK, self.port, timeout_s=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise ServiceError(f"{self.name} did not listen on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 10) -> None:
        """Stop it (SIGTERM lets it save its data first; SIGKILL does not)."""
        if not self.running():
            return
        assert self.process is not None
        # A paused process would not act on the signal until it is resumed.
        self.process.send_signal(signal.SIGCONT)
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def pause(self) -> None:
        """Freeze the process: connections stay open and nothing answers, the nastiest kind of outage."""
        assert self.process is not None, f"{self.name} was never started"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None, f"{self.name} was never started"
        self.process.send_signal(signal.SIGCONT)

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self.output is None:
            return subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=self.workdir, start_new_session=self.own_session)
        with self.output.open("ab") as out:
            return subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
                                    start_new_session=self.own_session)
