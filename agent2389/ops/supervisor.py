"""Keep ``agent2389 up``'s child processes running: restart one that exits, with backoff, and count it.

A process that exits unexpectedly is started again after a delay that doubles from 1 s up to 30 s (and
starts over once it ran for a minute). Only a crash loop (5 restarts of one process within 60 s) or a
process that cannot start at all (exit code 2: usage, configuration, a port in use) gives up, and then
``watch`` says which process and why.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agent2389.ops.processes import terminate

log = logging.getLogger("agent2389.up")
# The exit code of every agent2389 command that cannot start at all (argparse's, a ConfigError's).
CANNOT_START = 2


@dataclass(frozen=True)
class Policy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    loop_restarts: int = 5
    loop_window_s: float = 60.0
    # A run this long was a good one: the next crash waits first_delay_s again.
    steady_after_s: float = 60.0


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    delay_s: float = 0.0
    restart_at: float | None = None
    recent: deque[float] = field(default_factory=deque)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


class Supervisor:
    """Starts children with ``spawn`` and keeps them running until ``watch``'s stop event is set."""

    def __init__(self, spawn: Callable[[list[str]], subprocess.Popen[bytes]], policy: Policy | None = None,
                 on_restart: Callable[[str, int], None] = lambda name, count: None) -> None:
        self._spawn = spawn
        self._policy = policy or Policy()
        self._on_restart = on_restart
        self.children: list[Child] = []

    def start(self, name: str, command: list[str]) -> Child:
        child = Child(name, command, self._spawn(command), time.monotonic(), delay_s=self._policy.first_delay_s)
        self.children.append(child)
        return child

    def watch(self, stop: threading.Event, interval_s: float = 0.2) -> str | None:
        """Supervise until ``stop`` is set (returns None) or a child cannot be kept running (returns why)."""
        while not stop.wait(interval_s):
            problem = self.check()
            if problem is not None:
                return problem
        return None

    def check(self) -> str | None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child, now)
                continue
            code = child.process.poll()
            if code is None:
                if now - child.started_at >= self._policy.steady_after_s:
                    child.delay_s = self._policy.first_delay_s
                continue
            problem = self._exited(child, code, now)
            if problem is not None:
                return problem
        return None

    def _exited(self, child: Child, code: int, now: float) -> str | None:
        if code == CANNOT_START:
            return f"{child.name} cannot start (exit code {code}; its log above says why)"
        window = self._policy.loop_window_s
        while child.recent and now - child.recent[0] > window:
            child.recent.popleft()
        if len(child.recent) >= self._policy.loop_restarts:
            return (f"{child.name} is crash-looping: it exited with {describe_exit(code)} after "
                    f"{len(child.recent)} restarts within {window:.0f} s")
        log.error("%s exited with %s; restarting it in %.0f s", child.name, describe_exit(code), child.delay_s)
        child.restart_at = now + child.delay_s
        child.delay_s = min(child.delay_s * 2, self._policy.max_delay_s)
        return None

    def _restart(self, child: Child, now: float) -> None:
        child.restart_at = None
        child.recent.append(now)
        child.restarts += 1
        child.process = self._spawn(child.command)
        child.started_at = now
        log.warning("%s restarted (restart %d)", child.name, child.restarts)
        self._on_restart(child.name, child.restarts)

    def stop_in_order(self, stages: list[Callable[[str], bool]], timeout_s: float = 45) -> None:
        """SIGTERM each stage's children (chosen by name), wait for them, then the next stage."""
        for in_stage in stages:
            stage = [child for child in self.children if in_stage(child.name)]
            for child in stage:
                child.restart_at = None
                terminate(child.process)
            for child in stage:
                try:
                    child.process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in time; killing it", child.name)
                    child.process.kill()
                    child.process.wait()
