"""agent2389's own processes (``agent2389 bridge|worker|web --config DIR``) as children of another process.

The one way the stack is started: ``agent2389 up`` (up.py, through its supervisor), the end-to-end tests
(tests/e2e/stack.py) and the benchmarks (bench/stack.py) build the command line and stop the children here.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


def agent2389_command(command: str, config: Path | str, *args: str) -> list[str]:
    """The command line of ``agent2389 COMMAND --config CONFIG ARGS``, run by this interpreter."""
    return [sys.executable, "-m", "agent2389.ops.cli", command, "--config", str(config), *args]


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Ask it to stop (SIGTERM: a worker finishes what it holds, the bridge announces its agents unavailable)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def wait_or_kill(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """Its exit code, once it exited; killed when it did not within ``timeout_s``."""
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(5)


@dataclass
class Child:
    """One started process, its output in ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout_s: float = 30) -> int:
        terminate(self.popen)
        return wait_or_kill(self.popen, timeout_s)


def start_child(name: str, command: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None) -> Child:
    """Start ``command`` with its output (stdout and stderr) written to ``log_path``."""
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    return Child(name, popen, log_path)
