"""Scenario 5: Redis restarts, or stops answering for 10 s, while tasks flow; nothing accepted is lost."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.reliability.conftest import Scale, StackFactory
from tests.reliability.peer import LoadPeer, Tally, TaskStream
from tests.reliability.private_services import PrivateService
from tests.reliability.results import record
from tests.reliability.system import FaultStack, assert_healthy, bring_up, missing, trace, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def outage_seen_by_health(stack: FaultStack, timeout_s: float) -> dict[str, object]:
    """The /health answer once it reports Redis down (it must, within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        code, body = stack.http("/health")
        checks = body.get("checks", {})
        if code == 503 and checks.get("redis", {}).get("status") == "unhealthy":
            return body
        assert time.monotonic() < deadline, f"/health did not show the Redis outage: {code} {body}"
        time.sleep(0.2)


@pytest.mark.parametrize("outage", ["restart", pytest.param("unreachable", marks=pytest.mark.reliability_full)])
def test_a_redis_outage_under_load_loses_nothing_accepted_and_everything_recovers_without_a_restart(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], own_redis: PrivateService, mqtt_url: str,
    unique_id: str, scale: Scale, outage: str,
) -> None:
    agent, conversation = f"steady-{unique_id}", f"conv-{unique_id}"
    count = 300 if scale.full else 80
    down_s = 10.0 if outage == "unreachable" else (5.0 if scale.full else 2.0)
    # The shipped visibility timeout: leases must outlast the outage, or tasks still running go round twice.
    stack = make_stack(f"redis://127.0.0.1:{own_redis.port}/0", mqtt_url, {agent: "delay_s = 1"},
                       visibility_timeout_s=30)
    peer = peers(mqtt_url)
    bring_up(stack, peer, [agent], conversation, workers=[("--concurrency", "20")] * 2)
    processes = [p.popen.pid for p in stack.processes]

    with TaskStream(peer, agent, conversation, count, per_second=20) as stream:
        stream.wait_until_sent(count // 3)
        wait_until(lambda: stack.in_flight() > 0, 10, "no task in progress when Redis goes away")
        started = time.monotonic()
        if outage == "restart":
            own_redis.stop()
        else:
            own_redis.pause()
        health = outage_seen_by_health(stack, timeout_s=down_s)
        time.sleep(max(0.0, down_s - (time.monotonic() - started)))
        if outage == "restart":
            own_redis.start()
        else:
            own_redis.resume()
        back = time.monotonic()
    tasks = stream.envelopes
    answered = peer.wait_for_answers([t["task_id"] for t in tasks], timeout_s=90)
    times = peer.answer_times(tasks)
    time.sleep(scale.quiet_s)
    tally = peer.tally(tasks, agent)
    healthy_s, _ = stack.wait_http("/health", 200, 60)
    record(f"5 Redis {outage} under load", sent=count, answered=tally.answered, duplicated=tally.duplicated,
           errors=tally.errors, recovery_s=times[-1] - back if times else None, redis_down_s=down_s,
           healthy_after_s=time.monotonic() - back)
    assert health["status"] == "unhealthy"
    assert answered, f"{tally}\n{trace(stack, missing(peer, tasks))}"
    assert tally == Tally(sent=count, answered=count, responses=count, errors=0, missing=0, duplicated=0,
                          wrong_topic=0)
    # Nobody was restarted: the same processes recovered by themselves.
    assert [p.popen.pid for p in stack.processes if p.popen.poll() is None] == processes
    assert healthy_s < 60
    assert_healthy(stack, [agent])
