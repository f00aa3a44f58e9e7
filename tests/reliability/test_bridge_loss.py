"""Scenario 4: the bridge is killed while tasks are being published; the next bridge answers them all."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.conftest import Scale, StackFactory
from tests.reliability.peer import LoadPeer, Tally
from tests.reliability.results import record
from tests.reliability.system import assert_healthy, bring_up, missing, trace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_a_bridge_killed_while_tasks_are_published_loses_none_when_it_is_started_again(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale,
) -> None:
    agent, conversation, count = f"busy-{unique_id}", f"conv-{unique_id}", 200 if scale.full else 100
    stack = make_stack(redis_url, mqtt_url, {agent: "delay_s = 0.05"})
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "20")] * 2)
    [bridge] = stack.live("bridge")
    tasks: list[dict[str, Any]] = []

    def publish() -> None:
        for i in range(count):
            tasks.append(peer.send(agent, conversation, f"task {i}"))
            time.sleep(0.002)

    publisher = threading.Thread(target=publish)
    publisher.start()
    while len(tasks) < count // 3:
        time.sleep(0.01)
    bridge.signal(signal.SIGKILL)
    sent_before_kill = len(tasks)
    peer.wait_for_status(agent, "unavailable", timeout_s=10)
    publisher.join()
    peer.flush()
    stack.bridge()
    restarted = time.monotonic()
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=60)
    times = peer.answer_times(tasks)
    peer.wait_for_status(agent, "available", timeout_s=10)
    time.sleep(scale.quiet_s)
    tally = peer.tally(tasks, agent)
    record("4 bridge SIGKILL while publishing", sent=count, answered=tally.answered, duplicated=tally.duplicated,
           errors=tally.errors, recovery_s=times[-1] - restarted if times else None,
           sent_before_kill=sent_before_kill)
    assert answered, f"{tally}\n{trace(stack, missing(peer, tasks))}"
    assert tally == Tally(sent=count, answered=count, responses=count, errors=0, missing=0, duplicated=0,
                          wrong_topic=0)
    assert_healthy(stack, [agent])
