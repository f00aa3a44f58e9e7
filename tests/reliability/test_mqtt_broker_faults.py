"""Scenarios 3 and 6: Mosquitto restarts under load, or is not there when everything starts."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.reliability.conftest import Scale, StackFactory
from tests.reliability.peer import LoadPeer, TaskStream
from tests.reliability.private_services import PrivateService
from tests.reliability.results import record
from tests.reliability.system import (
    assert_healthy,
    bring_up,
    missing,
    published_by_workers,
    trace,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_a_restart_of_mosquitto_under_load_loses_no_task_and_no_answer(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], own_mosquitto: PrivateService, redis_url: str,
    unique_id: str, scale: Scale,
) -> None:
    own_mosquitto.start()
    mqtt_url = f"mqtt://127.0.0.1:{own_mosquitto.port}"
    agent, conversation = f"steady-{unique_id}", f"conv-{unique_id}"
    count, down_s = (300, 10.0) if scale.full else (80, 3.0)
    stack = make_stack(redis_url, mqtt_url, {agent: "delay_s = 1"})
    # A persistent session: the answers published while it reconnects wait for it in the broker.
    peer = peers(mqtt_url, persistent=True)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "20")] * 2)

    with TaskStream(peer, agent, conversation, count, per_second=20) as stream:
        stream.wait_until_sent(count // 2)
        wait_until(lambda: stack.in_flight() > 0, 10, "no task in progress when the broker stops")
        own_mosquitto.stop()
        stopped = time.monotonic()
        time.sleep(down_s)
        own_mosquitto.start()
        back = time.monotonic()
    tasks = stream.envelopes
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=60)
    times = peer.answer_times(tasks)
    # Taken in before the outage and answered after it (the answer waited in a worker or the broker),
    # and published by the peer while the broker was down (its client kept them until the broker returned).
    held = [t for t in stream.sent_between(0, stopped) if peer.answer_times([t]) >= [back]]
    during = stream.sent_between(stopped, back)
    peer.wait_for_status(agent, "available", timeout_s=10)
    time.sleep(scale.quiet_s)
    tally = peer.tally(tasks, agent)
    [bridge] = stack.live("bridge")
    workers_waited = sum(w.logged("still waiting for the MQTT broker") for w in stack.live("worker"))
    published = published_by_workers(stack)
    record("3 Mosquitto restart under load", sent=count, answered=tally.answered, duplicated=tally.duplicated,
           errors=tally.errors, recovery_s=times[-1] - back if times else None, broker_down_s=down_s,
           answered_after_outage_of_tasks_sent_before=len(held), sent_during_outage=len(during),
           workers_waiting_over_10_s_for_puback=workers_waited,
           published_more_than_once=sum(1 for n in published.values() if n > 1),
           delivered_with_dup_flag=sum(peer.redelivered.values()))
    assert answered, f"{tally}\n{trace(stack, missing(peer, tasks))}"
    assert (tally.answered, tally.responses, tally.missing, tally.wrong_topic) == (count, count, 0, 0), tally
    # agent2389 published every answer exactly once ...
    assert sorted(published.elements()) == sorted(t["task_id"] for t in tasks)
    # ... and only an answer in flight when the broker stopped may reach a subscriber twice (QoS 1 is
    # at least once: the publisher resends what the broker never acknowledged).
    twice = [t["task_id"] for t in tasks if len(peer.answers[t["task_id"]]) > 1]
    assert all(peer.answers[task_id][0][2] < back for task_id in twice), "a duplicate of an answer sent later"
    assert held and during, "the outage must fall on tasks in progress and on tasks being published"
    assert bridge.logged("session present: True"), "the bridge did not resume its persistent session"
    assert_healthy(stack, [agent])


@pytest.mark.parametrize("absent", ["mosquitto", pytest.param("redis", marks=pytest.mark.reliability_full)])
def test_with_a_broker_down_at_start_every_process_waits_and_becomes_ready_by_itself(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], own_mosquitto: PrivateService,
    own_redis_stopped: PrivateService, unique_id: str, scale: Scale, absent: str,
) -> None:
    late = own_mosquitto if absent == "mosquitto" else own_redis_stopped
    early = own_redis_stopped if absent == "mosquitto" else own_mosquitto
    early.start()
    mqtt_url = f"mqtt://127.0.0.1:{own_mosquitto.port}"
    agent, conversation = f"patient-{unique_id}", f"conv-{unique_id}"
    stack = make_stack(f"redis://127.0.0.1:{own_redis_stopped.port}/0", mqtt_url, {agent: ""})
    stack.web()
    stack.worker("--concurrency", "4")
    stack.bridge()
    stack.wait_http("/live", 200, 20)
    _, not_ready = stack.wait_http("/ready", 503, 20)
    time.sleep(5 if scale.full else 3)
    assert [p.name for p in stack.processes if p.popen.poll() is not None] == [], "a process gave up"
    assert stack.http("/live")[0] == 200
    assert stack.http("/ready")[0] == 503

    late.start()
    appeared = time.monotonic()
    ready_s, _ = stack.wait_http("/ready", 200, 60)
    peer = peers(mqtt_url)
    peer.follow(f"/conversations/{conversation}/#")
    peer.follow(f"/control/agents/{agent}/status")
    peer.wait_for_status(agent, "available", timeout_s=20)
    task = peer.send(agent, conversation, "after the wait")
    answered = peer.wait_for_answers([task["task_id"]], timeout_s=20)
    record(f"6 {absent} down at start", sent=1, answered=int(answered), duplicated=0, errors=0,
           recovery_s=time.monotonic() - appeared, ready_after_s=ready_s)
    assert not_ready["ready"] is False and not_ready["reasons"]
    assert answered
    assert_healthy(stack, [agent])
