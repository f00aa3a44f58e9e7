"""Scenario 10: a long run with worker restarts: nothing lost, nothing answered twice, memory flat."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.conftest import Scale, StackFactory
from tests.reliability.peer import LoadPeer, TaskStream
from tests.reliability.private_services import PrivateService
from tests.reliability.results import record
from tests.reliability.system import FaultStack, assert_healthy, bring_up, ledger_entry, rss_mib, trace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
SOAK_TASKS = int(os.environ.get("RELIABILITY_SOAK_TASKS", "20000"))


class WorkerChaos:
    """Restarts a random worker (SIGKILL or SIGTERM) every few seconds; one steady worker is never touched."""

    def __init__(self, stack: FaultStack, steady_pid: int, every_s: tuple[float, float],
                 signals: list[signal.Signals], seed: int) -> None:
        self._stack, self._steady_pid, self._every_s, self._signals = stack, steady_pid, every_s, signals
        self._random = random.Random(seed)
        self.restarts: dict[str, int] = {"SIGKILL": 0, "SIGTERM": 0}
        self.kill_times: list[float] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos", daemon=True)

    def __enter__(self) -> WorkerChaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(60)

    def _loop(self) -> None:
        while not self._stopping.wait(self._random.uniform(*self._every_s)):
            victims = [w for w in self._stack.live("worker") if w.popen.pid != self._steady_pid]
            if not victims:
                continue
            victim = self._random.choice(victims)
            how = self._random.choice(self._signals)
            if how == signal.SIGKILL:
                self.kill_times.append(time.time())
            victim.signal(how)
            victim.popen.wait(60)
            self.restarts[how.name] += 1
            self._stack.worker("--concurrency", "20")


def memory(stack: FaultStack, steady_pid: int) -> dict[str, float]:
    by_name = {p.name.split("-")[0]: p.popen.pid for p in stack.processes if p.popen.poll() is None}
    return {"bridge": rss_mib(by_name["bridge"]), "web": rss_mib(by_name["web"]), "worker": rss_mib(steady_pid)}


def test_a_long_run_with_worker_restarts_loses_nothing_repeats_nothing_and_keeps_memory_flat(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], own_redis: PrivateService,
    own_mosquitto: PrivateService, unique_id: str, scale: Scale, tmp_path: Path,
) -> None:
    count = SOAK_TASKS if scale.full else 900
    rate = 100.0 if scale.full else 60.0
    own_mosquitto.start()
    mqtt_url = f"mqtt://127.0.0.1:{own_mosquitto.port}"
    agent, conversation = f"soak-{unique_id}", f"conv-{unique_id}"
    stack = make_stack(f"redis://127.0.0.1:{own_redis.port}/0", mqtt_url, {agent: "delay_s = 0.05"},
                       visibility_timeout_s=30 if scale.full else 6)
    peer = peers(mqtt_url, persistent=True)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "20")] * (4 if scale.full else 2))
    steady = stack.live("worker")[0].popen.pid

    started = time.monotonic()
    with TaskStream(peer, agent, conversation, count, per_second=rate) as stream:
        stream.wait_until_sent(count // 10, timeout_s=count / rate + 60)
        warm = [e["task_id"] for e in stream.envelopes[: count // 20]]
        assert peer.wait_for_answers(warm, timeout_s=60), "the first tasks were not answered"
        rss_start = memory(stack, steady)
        every_s = (10.0, 20.0) if scale.full else (2.0, 4.0)
        signals = [signal.SIGKILL, signal.SIGTERM]
        with WorkerChaos(stack, steady, every_s, signals, seed=int(unique_id, 16)) as chaos:
            stream.wait_until_sent(count, timeout_s=count / rate + 120)
    tasks = stream.envelopes
    peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=90)
    duration_s = time.monotonic() - started
    time.sleep(scale.quiet_s)
    rss_end = memory(stack, steady)
    tally = peer.tally(tasks, agent)
    lost = [t for t in tasks if not peer.answers.get(t["task_id"])]
    twice = [t for t in tasks if len(peer.answers.get(t["task_id"], [])) > 1]
    retried = [t for t in twice if ledger_entry(stack, t)[1] > 1]
    record("10 soak with worker restarts", sent=count, answered=tally.answered, duplicated=tally.duplicated,
           errors=tally.errors, recovery_s=None, duration_s=duration_s, workers=4 if scale.full else 2,
           restarts_sigkill=chaos.restarts["SIGKILL"], restarts_sigterm=chaos.restarts["SIGTERM"],
           duplicates_after_a_retry=len(retried),
           **{f"rss_{name}_start_mib": round(value, 1) for name, value in rss_start.items()},
           **{f"rss_{name}_end_mib": round(value, 1) for name, value in rss_end.items()})
    # Every duplicate must be the known one (an answer published, then its worker killed before the
    # ledger knew, so the retry published it again); any other duplicate and any loss fails.
    assert not lost, f"{tally}\n{trace(stack, [t['task_id'] for t in lost])}"
    assert len(twice) == len(retried), f"answered twice without a retry: {twice}"
    assert (tally.answered + len(lost), tally.responses, tally.errors, tally.wrong_topic) == (count, tally.answered,
                                                                                               0, 0), tally
    assert sum(chaos.restarts.values()) >= (10 if scale.full else 2)
    for name, before in rss_start.items():
        assert rss_end[name] < before * 1.25 + 10, f"{name} grew from {before:.1f} to {rss_end[name]:.1f} MiB"
    assert_healthy(stack, [agent])
    if twice:
        pytest.xfail(f"{len(twice)} task(s) answered twice after a kill: the known limit of docs/reliability.md")

