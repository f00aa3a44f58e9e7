"""Scenario 9: a task that kills every worker that runs it is tried a bounded number of times, then fails."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import Scale, StackFactory
from tests.reliability.peer import LoadPeer
from tests.reliability.results import record
from tests.reliability.system import Supervisor, assert_healthy, bring_up, missing, trace
from workers.processing import MAX_ATTEMPTS

# Full run only: its crashes land while tasks stream in, and a crash can lose one in transit (see test_worker_loss).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180), pytest.mark.reliability_full]
POISON_DIR = Path(__file__).parent / "poison"


def test_a_task_that_always_crashes_its_worker_fails_after_bounded_attempts_and_blocks_nothing_else(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale,
) -> None:
    agent, conversation = f"poisoned-{unique_id}", f"conv-{unique_id}"
    path = os.pathsep.join(p for p in (str(POISON_DIR), os.environ.get("PYTHONPATH", "")) if p)
    stack = make_stack(redis_url, mqtt_url, {agent: "delay_s = 0.2"}, visibility_timeout_s=3,
                       extra_env={"PYTHONPATH": path})
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "4")] * 2)

    with Supervisor(stack, 2, "--concurrency", "4") as supervisor:
        poison = peer.send(agent, conversation, "POISON")
        others: list[dict[str, Any]] = []
        started = time.monotonic()
        # Ordinary tasks keep arriving all the while the poison task is crashing workers.
        while not peer.answers.get(poison["task_id"]) and time.monotonic() - started < 120:
            others.append(peer.send(agent, conversation, f"ordinary {len(others)}"))
            time.sleep(0.25)
        failed_after_s = time.monotonic() - started
        answered = peer.wait_for_answers([t["task_id"] for t in others], timeout_s=30)
        time.sleep(scale.quiet_s)
        crashes = supervisor.restarts
        ordinary = peer.tally(others, agent)
        poisoned = peer.tally([poison], agent)
        record("9 poison task", sent=len(others) + 1, answered=ordinary.answered + poisoned.answered,
               duplicated=ordinary.duplicated + poisoned.duplicated, errors=ordinary.errors + poisoned.errors,
               recovery_s=failed_after_s, worker_crashes=crashes)
        assert poisoned.answered == 1 and poisoned.duplicated == 0, trace(stack, [poison["task_id"]])
        [(topic, error, _)] = peer.answers[poison["task_id"]]
        assert topic == f"/conversations/{conversation}/{agent}"
        assert error["error"]["code"] == "internal_error"
        assert error["task_id"] == poison["task_id"]
        assert crashes == MAX_ATTEMPTS
        assert answered, f"{ordinary}\n{trace(stack, missing(peer, others))}"
        # Every other task got its answer, once, and none was failed for sharing a worker with the poison.
        assert (ordinary.answered, ordinary.responses, ordinary.duplicated) == (len(others), len(others), 0)
        assert_healthy(stack, [agent])
