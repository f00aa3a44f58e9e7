"""Scenarios 1, 2 and 7: workers die, stop, or are all gone, and no task is lost or answered twice."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import pytest

from agent2389.celery_app import SOFT_SHUTDOWN_S
from tests.e2e.stack import Process
from tests.reliability.conftest import Scale, StackFactory
from tests.reliability.peer import LoadPeer, Tally
from tests.reliability.results import record
from tests.reliability.system import (
    FaultStack,
    assert_healthy,
    becomes,
    bring_up,
    hold_restore_lock_like_a_dead_worker,
    ledger_state,
    missing,
    trace,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def exactly_once(count: int, errors: int = 0) -> Tally:
    return Tally(sent=count, answered=count, responses=count - errors, errors=errors, missing=0, duplicated=0,
                 wrong_topic=0)


@pytest.mark.parametrize("restore_lock_left_behind", [
    pytest.param(False, id="plain", marks=pytest.mark.reliability_full),
    pytest.param(True, id="after-a-death-mid-restore"),
])
def test_a_worker_killed_with_tasks_in_flight_has_every_one_answered_once_within_a_minute(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale, restore_lock_left_behind: bool,
) -> None:
    # The shipped visibility timeout in a full run; a short one keeps the CI run short.
    visibility_timeout_s = 30 if scale.full else 6
    agent, conversation, count = f"slow-{unique_id}", f"conv-{unique_id}", scale.in_flight
    stack = make_stack(redis_url, mqtt_url, {agent: "delay_s = 5"}, visibility_timeout_s=visibility_timeout_s)
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", str(count))])
    [victim] = stack.live("worker")
    tasks = [peer.send(agent, conversation, f"task {i}") for i in range(count)]
    peer.flush()
    wait_until(lambda: stack.in_flight() == count, 20, f"the worker did not start all {count} tasks")

    # A worker killed while it swept expired leases leaves kombu's restore lock behind (scenario 9 found it).
    lock_s = hold_restore_lock_like_a_dead_worker(stack) if restore_lock_left_behind else 0.0
    victim.signal(signal.SIGKILL)
    killed = time.monotonic()
    # What a supervisor (Kubernetes, compose's restart policy) does: start a replacement.
    stack.worker("--concurrency", str(count))
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=60)
    times = peer.answer_times(tasks)
    time.sleep(scale.quiet_s)
    tally = peer.tally(tasks, agent)
    recovery_s = (times[-1] - killed) if times else float("inf")
    record("1 worker SIGKILL mid-task" + (", restore lock left behind" if restore_lock_left_behind else ""),
           sent=count, answered=tally.answered, duplicated=tally.duplicated,
           errors=tally.errors, recovery_s=recovery_s, visibility_timeout_s=visibility_timeout_s,
           llm_delay_s=5, first_answer_after_kill_s=(times[0] - killed) if times else None,
           restore_lock_s=lock_s)
    assert answered, f"not all answered within 60 s of the kill: {tally}\n{trace(stack, missing(peer, tasks))}"
    assert tally == exactly_once(count)
    assert recovery_s < 60
    assert_healthy(stack, [agent])


def test_a_worker_stopped_under_load_takes_no_new_work_and_exits_within_its_soft_shutdown_time(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale,
) -> None:
    agent, conversation, count, threads = f"busy-{unique_id}", f"conv-{unique_id}", scale.burst, 8
    stack = make_stack(redis_url, mqtt_url, {agent: "delay_s = 0.5"})
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", str(threads))] * 2)
    stopping = stack.live("worker")[0]
    tasks = [peer.send(agent, conversation, f"task {i}") for i in range(count)]
    peer.flush()
    wait_until(lambda: stack.in_flight() >= threads, 20, "the workers did not get busy")

    stopping.signal(signal.SIGTERM)
    signalled, signalled_wall = time.monotonic(), time.time()
    exit_code = stopping.popen.wait(SOFT_SHUTDOWN_S + 10)
    stopped_s = time.monotonic() - signalled
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=60)
    time.sleep(scale.quiet_s)
    tally = peer.tally(tasks, agent)
    finished_after = [line for line in stopping.log_lines() if line["fields"].get("message") == "task completed"
                      and _epoch(line["timestamp"]) > signalled_wall]
    record("2 worker SIGTERM under load", sent=count, answered=tally.answered, duplicated=tally.duplicated,
           errors=tally.errors, recovery_s=stopped_s, finished_after_sigterm=len(finished_after))
    assert exit_code == 0
    assert stopped_s < SOFT_SHUTDOWN_S
    # It finishes what it held (at most one task per thread) and takes nothing new.
    assert len(finished_after) <= threads
    assert answered, tally
    assert tally == exactly_once(count)
    assert_healthy(stack, [agent])


@pytest.mark.reliability_full
@pytest.mark.timeout(300)
def test_a_worker_stopped_with_tasks_longer_than_its_soft_shutdown_time_hands_them_back(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale,
) -> None:
    agent, conversation, count = f"long-{unique_id}", f"conv-{unique_id}", 4
    stack = make_stack(redis_url, mqtt_url, {agent: f"delay_s = {SOFT_SHUTDOWN_S + 15}"}, visibility_timeout_s=30)
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "4")])
    [stopping] = stack.live("worker")
    tasks = [peer.send(agent, conversation, f"task {i}") for i in range(count)]
    peer.flush()
    wait_until(lambda: stack.in_flight() == count, 20, "the worker did not start every task")
    stack.worker("--concurrency", "4")

    stopping.signal(signal.SIGTERM)
    signalled = time.monotonic()
    exit_code = stopping.popen.wait(SOFT_SHUTDOWN_S + 20)
    stopped_s = time.monotonic() - signalled
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=SOFT_SHUTDOWN_S + 60)
    time.sleep(scale.quiet_s)
    tally = peer.tally(tasks, agent)
    record("2b worker SIGTERM, tasks longer than soft shutdown", sent=count, answered=tally.answered,
           duplicated=tally.duplicated, errors=tally.errors, recovery_s=time.monotonic() - signalled,
           stopped_s=stopped_s)
    assert stopped_s < SOFT_SHUTDOWN_S + 5, "a stopping worker must not hold tasks past its soft shutdown time"
    assert exit_code == 0
    assert answered, tally
    assert tally == exactly_once(count)
    assert_healthy(stack, [agent])


@pytest.mark.reliability_full
def test_an_agent_whose_workers_are_all_gone_is_unavailable_and_its_tasks_wait_for_a_new_one(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale,
) -> None:
    agent, conversation, count = f"lonely-{unique_id}", f"conv-{unique_id}", scale.burst
    stack = make_stack(redis_url, mqtt_url, {agent: ""})
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "10")] * 2)
    for worker in stack.live("worker"):
        worker.signal(signal.SIGKILL)
    unavailable_s = peer.wait_for_status(agent, "unavailable", timeout_s=20)
    _, health = stack.wait_http("/health", 503, 10)
    assert health["checks"]["workers"]["status"] == "unhealthy"

    tasks = [peer.send(agent, conversation, f"task {i}") for i in range(count)]
    peer.flush()
    time.sleep(scale.quiet_s)
    waiting, _ = stack.backlog(agent)
    assert peer.tally(tasks, agent).answered == 0
    assert waiting == count
    stack.worker("--concurrency", "10")
    returned = time.monotonic()
    available_s = peer.wait_for_status(agent, "available", timeout_s=20, workers=1)
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=30)
    drained_s = time.monotonic() - returned
    time.sleep(scale.quiet_s)
    tally = peer.tally(tasks, agent)
    record("7 all workers gone", sent=count, answered=tally.answered, duplicated=tally.duplicated,
           errors=tally.errors, recovery_s=drained_s, unavailable_after_s=unavailable_s,
           available_after_s=available_s)
    assert unavailable_s < 15
    assert answered, tally
    assert tally == exactly_once(count)
    assert_healthy(stack, [agent])


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_a_worker_killed_while_a_task_is_on_its_way_to_it_has_it_answered_once(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale,
) -> None:
    visibility_timeout_s = 30 if scale.full else 6
    agent, conversation = f"transit-{unique_id}", f"conv-{unique_id}"
    stack = make_stack(redis_url, mqtt_url, {agent: ""}, visibility_timeout_s=visibility_timeout_s)
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "4")])
    [victim] = stack.live("worker")
    task, let_through = hand_a_task_to_a_frozen_worker(stack, peer, victim, agent, conversation)
    victim.signal(signal.SIGKILL)
    killed = time.monotonic()
    stack.worker("--concurrency", "4")
    answered = peer.wait_for_answers([task["task_id"]], timeout_s=visibility_timeout_s + 30)
    recovery_s = time.monotonic() - killed
    time.sleep(scale.quiet_s)
    sent = [*let_through, task]
    tally = peer.tally(sent, agent)
    record("1c worker SIGKILL with a task in transit", sent=len(sent), answered=tally.answered,
           duplicated=tally.duplicated, errors=tally.errors, recovery_s=recovery_s,
           freezes_outside_brpop=len(let_through))
    assert answered, tally
    assert tally == exactly_once(len(sent))
    # Back on its queue once it has been in transit longer than the visibility timeout (plus a sweep).
    assert recovery_s < visibility_timeout_s + 15
    assert_healthy(stack, [agent])


def hand_a_task_to_a_frozen_worker(stack: FaultStack, peer: LoadPeer, victim: Process, agent: str,
                                   conversation: str, tries: int = 8) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Freeze the worker while it waits in BRPOP and send a task: Redis hands it over, the worker never records it.

    An idle worker always waits in BRPOP, but Redis ends each BRPOP after a second, and a frozen worker sends no
    next one: a task that reaches Redis after that stays on its queue. Then the worker is thawed, answers and
    acknowledges it, and the freeze is tried again. Returns the task in transit and the tasks let through.
    """
    let_through: list[dict[str, Any]] = []
    for _ in range(tries):
        victim.signal(signal.SIGSTOP)
        task = peer.send(agent, conversation, "in transit")
        if becomes(partial(_off_its_queue_unrecorded, stack, agent, task), 3):
            return task, let_through
        victim.signal(signal.SIGCONT)
        let_through.append(task)
        assert peer.wait_for_answers([task["task_id"]], timeout_s=20), "a thawed worker did not answer"
        # Acknowledged after it is answered: frozen before that, the worker would leave it counted as held.
        wait_until(lambda: stack.backlog(agent) == (0, 0), 10, "a thawed worker did not acknowledge its task")
    raise AssertionError(f"the worker was never frozen inside BRPOP in {tries} tries")


def _off_its_queue_unrecorded(stack: FaultStack, agent: str, task: dict[str, Any]) -> bool:
    return ledger_state(stack, task) == "queued" and stack.backlog(agent) == (0, 0)
