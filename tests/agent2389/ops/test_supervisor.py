"""The supervisor behind ``agent2389 up``, on real child processes, with short delays."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from agent2389.ops.supervisor import Policy, Supervisor

FAST = Policy(first_delay_s=0.05, max_delay_s=0.2, loop_restarts=3, loop_window_s=30, steady_after_s=60)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def spawn(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command)


@pytest.fixture
def restarts() -> list[tuple[str, int]]:
    return []


@pytest.fixture
def supervisor(restarts: list[tuple[str, int]]) -> Iterator[Supervisor]:
    running = Supervisor(spawn, FAST, on_restart=lambda name, count: restarts.append((name, count)))
    yield running
    running.stop_in_order([lambda name: True], timeout_s=5)


def watch_until(supervisor: Supervisor, done: threading.Event, timeout_s: float = 20) -> str | None:
    """``watch`` until ``done`` is set (returns None) or it gives up (returns why)."""
    timer = threading.Timer(timeout_s, done.set)
    timer.start()
    try:
        return supervisor.watch(done, interval_s=0.02)
    finally:
        timer.cancel()


def test_a_child_that_dies_is_restarted_counted_and_the_others_keep_running() -> None:
    restarts: list[tuple[str, int]] = []
    back = threading.Event()
    supervisor = Supervisor(spawn, FAST, on_restart=lambda name, count: (restarts.append((name, count)), back.set()))
    try:
        steady = supervisor.start("web", python("import time; time.sleep(60)"))
        mortal = supervisor.start("worker-1", python("import time; time.sleep(60)"))
        first = mortal.process
        first.kill()
        assert watch_until(supervisor, back) is None
        assert back.is_set() and restarts == [("worker-1", 1)]
        assert mortal.process is not first and mortal.process.poll() is None
        assert steady.process.poll() is None
    finally:
        supervisor.stop_in_order([lambda name: True], timeout_s=5)


def test_the_delay_before_a_restart_doubles_up_to_its_maximum(supervisor: Supervisor) -> None:
    child = supervisor.start("worker-1", python("raise SystemExit(1)"))
    delays: list[float] = []
    scheduled = None
    while len(delays) < 3:
        checked_at = time.monotonic()
        supervisor.check()
        if child.restart_at is not None and child.restart_at != scheduled:
            scheduled = child.restart_at
            delays.append(scheduled - checked_at)  # the delay, plus the moment check() took to see the exit
        time.sleep(0.01)
    assert delays == pytest.approx([0.05, 0.1, 0.2], abs=0.02)


def test_a_crash_loop_stops_the_stack_and_names_the_process(supervisor: Supervisor) -> None:
    supervisor.start("web", python("import time; time.sleep(60)"))
    supervisor.start("worker-2", python("raise SystemExit(1)"))
    problem = watch_until(supervisor, threading.Event())
    assert problem == "worker-2 is crash-looping: it exited with code 1 after 3 restarts within 30 s"


def test_a_process_that_cannot_start_stops_the_stack_at_once(supervisor: Supervisor,
                                                              restarts: list[tuple[str, int]]) -> None:
    supervisor.start("web", python("raise SystemExit(2)"))
    problem = watch_until(supervisor, threading.Event())
    assert problem == "web cannot start (exit code 2; its log above says why)"
    assert restarts == []


def test_a_stop_request_ends_the_watch_without_a_problem(supervisor: Supervisor) -> None:
    supervisor.start("bridge", python("import time; time.sleep(60)"))
    stop = threading.Event()
    stop.set()
    assert supervisor.watch(stop) is None
