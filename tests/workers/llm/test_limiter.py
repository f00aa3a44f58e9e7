"""The fleet-wide limiter on real Redis: slots shared by several limiters (as by several workers), a dead
worker's slots coming back, and the fleet pausing when the provider asks it to."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from fakes.anthropic_api import FakeAnthropic
from fakes.anthropic_replies import Failure, Reply, Text
from tests.conftest import REPO
from tests.workers.llm.agents import agent_for, task
from workers.llm.anthropic_runner import AnthropicRunner
from workers.llm.limiter import LEASE_S, POLL_S, FleetLimiter, Limits

MakeLimiter = Callable[..., FleetLimiter]


@pytest.fixture
def limiter_for(redis_client: redis.Redis, key_prefix: str) -> Iterator[MakeLimiter]:
    made: list[FleetLimiter] = []

    def make(limit: int | Limits, scope: str = "researcher", stats: StatsRecorder | None = None) -> FleetLimiter:
        limiter = FleetLimiter(redis_client, Keys(key_prefix), scope, limit, stats)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


def test_limiters_of_three_workers_never_hold_more_slots_than_the_limit(limiter_for: MakeLimiter) -> None:
    limiters = [limiter_for(5) for _ in range(3)]
    running, peak, done = 0, 0, 0
    lock = threading.Lock()

    def call(limiter: FleetLimiter) -> None:
        nonlocal running, peak, done
        with limiter.slot():
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.02)
            with lock:
                running -= 1
                done += 1

    threads = [threading.Thread(target=call, args=(limiters[n % 3],)) for n in range(90)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert done == 90
    assert peak == 5


def test_a_waiting_call_starts_as_soon_as_a_slot_is_given_back(limiter_for: MakeLimiter) -> None:
    holder, waiter = limiter_for(1), limiter_for(1)
    waited: list[float] = []
    with holder.slot():
        thread = threading.Thread(target=lambda: waited.append(waiter.slot().__enter__()))
        thread.start()
        time.sleep(0.3)
    thread.join(timeout=5)

    assert waited and 0.25 < waited[0] < 0.3 + POLL_S / 2  # woken by the release, not by its next poll


@pytest.mark.slow
def test_a_killed_workers_slots_come_back_within_seconds(
    limiter_for: MakeLimiter, redis_url: str, key_prefix: str
) -> None:
    script = textwrap.dedent(f"""
        import sys, time, redis
        from agent2389.state.keys import Keys
        from workers.llm.limiter import FleetLimiter
        limiter = FleetLimiter(redis.Redis.from_url({redis_url!r}), Keys({key_prefix!r}), "researcher", 2)
        slots = [limiter.slot() for _ in range(2)]
        for slot in slots:
            slot.__enter__()
        print("holding", flush=True)
        time.sleep(60)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert worker.stdout is not None and worker.stdout.readline() == b"holding\n"
        limiter = limiter_for(2)
        time.sleep(LEASE_S)  # the live worker's renewals keep its slots beyond one lease
        assert worker.poll() is None
        started = time.monotonic()
        worker.kill()
        with limiter.slot(), limiter.slot():
            waited = time.monotonic() - started
    finally:
        worker.kill()
        worker.wait(5)
        if worker.stdout is not None:
            worker.stdout.close()

    assert waited <= LEASE_S + 2 * POLL_S


def test_a_pause_holds_back_every_limiter_of_the_agent(limiter_for: MakeLimiter) -> None:
    first, second = limiter_for(5), limiter_for(5)
    first.pause(1.0)

    with second.slot() as waited:
        pass

    assert 0.8 <= waited <= 1.0 + POLL_S


def test_time_spent_waiting_is_recorded_per_agent(
    limiter_for: MakeLimiter, redis_client: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    limiter = limiter_for(5, stats=StatsRecorder(redis_client, keys))
    limiter.pause(0.5)

    with limiter.slot():
        pass
    with limiter.slot():
        pass

    stats = redis_client.hgetall(keys.agent_stats("researcher"))
    assert stats["llm_waits"] == "2"
    assert 0.4 <= float(stats["llm_wait_seconds_sum"]) <= 0.5 + POLL_S


def test_a_429_with_retry_after_pauses_the_other_workers_of_the_agent(
    fake_anthropic: FakeAnthropic, limiter_for: MakeLimiter
) -> None:
    arrivals: list[tuple[float, str]] = []

    def respond(request: dict[str, Any]) -> Reply:
        text = request["messages"][0]["content"]
        arrivals.append((time.monotonic(), text))
        if text == "first" and sum(1 for _, t in arrivals if t == "first") == 1:
            return Failure(429, headers={"retry-after": "1.5"})
        return Text(f"answered {text}")

    fake_anthropic.respond(respond)
    agent = agent_for(fake_anthropic, max_retries=2, max_concurrency=10)
    runners = [AnthropicRunner(agent, limiter=limiter_for(10)) for _ in range(2)]
    try:
        answers: dict[str, str] = {}
        first = threading.Thread(target=lambda: answers.update(first=runners[0].run(task(agent, None, "first"))))
        first.start()
        while not arrivals:
            time.sleep(0.01)
        time.sleep(0.2)  # the 429 has been answered and the pause set
        answers["second"] = runners[1].run(task(agent, None, "second"))
        first.join(timeout=10)
    finally:
        for runner in runners:
            runner.close()

    refused_at = arrivals[0][0]
    second_at = next(at for at, text in arrivals if text == "second")
    assert answers == {"first": "answered first", "second": "answered second"}
    assert second_at - refused_at >= 1.3


def test_requests_per_window_never_exceed_the_limit_across_workers(
    fake_anthropic: FakeAnthropic, limiter_for: MakeLimiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[float] = []
    lock = threading.Lock()

    def recording(slot: Callable[[], Any]) -> Callable[[], Any]:
        @contextmanager
        def started() -> Iterator[float]:
            with slot() as wait:
                with lock:
                    starts.append(time.monotonic())
                yield wait

        return started

    fake_anthropic.respond(lambda request: Text("ok"))
    agent = agent_for(fake_anthropic, requests_per_minute=5)
    limits = Limits(requests_per_minute=5, window_s=2.0)  # a two-second "minute" keeps the test short
    limiters = [limiter_for(limits) for _ in range(3)]
    for limiter in limiters:
        monkeypatch.setattr(limiter, "slot", recording(limiter.slot))
    runners = [AnthropicRunner(agent, limiter=limiter) for limiter in limiters]
    try:
        threads = [threading.Thread(target=runners[n % 3].run, args=(task(agent),)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for runner in runners:
            runner.close()

    starts.sort()
    assert len(starts) == 12 and len(fake_anthropic.message_requests()) == 12
    # Each start is timed when the limiter let the call through (not when it reached the API, which a busy
    # machine delays by more than a window's edge); Redis's clock and this thread's reading of it differ by
    # a Redis reply, allowed up to 0.25 s here. A limiter letting 6 through per window still fails.
    busiest = max(sum(1 for other in starts if at <= other < at + 2.0 - 0.25) for at in starts)
    assert busiest <= 5
    assert starts[-1] - starts[0] >= 4.0 - 0.25  # 12 calls at 5 per window need three windows


def test_output_tokens_per_window_hold_calls_back_until_the_window_has_room(limiter_for: MakeLimiter) -> None:
    limiter = limiter_for(Limits(output_tokens_per_minute=100, window_s=2.0))
    with limiter.slot() as first_wait:
        limiter.spent(10, 60)
    with limiter.slot() as second_wait:
        limiter.spent(10, 60)
    with limiter.slot() as third_wait:
        pass

    assert first_wait < 0.2 and second_wait < 0.2
    # 120 of 100 spent: wait until the first call's second leaves the window (tokens count per whole second)
    assert 1.0 - 0.05 <= third_wait <= 2.0 + POLL_S


def test_agents_that_share_a_scope_share_its_limits(
    fake_anthropic: FakeAnthropic, redis_client: redis.Redis, key_prefix: str
) -> None:
    from workers.llm import FleetLimits

    limits = FleetLimits(redis_client, Keys(key_prefix))
    first = agent_for(fake_anthropic, max_concurrency=1, limit_scope="team-key")
    made = [limits.limiter(name, first.llm) for name in ("writer", "reader")]
    try:
        assert all(limiter is not None for limiter in made)
        writer, reader = (limiter for limiter in made if limiter is not None)
        with writer.slot():
            waited: list[float] = []
            thread = threading.Thread(target=lambda: waited.append(reader.slot().__enter__()))
            thread.start()
            time.sleep(0.3)
        thread.join(timeout=5)
    finally:
        for limiter in made:
            if limiter is not None:
                limiter.close()

    assert waited and waited[0] >= 0.25
    assert limits.limiter("plain", agent_for(fake_anthropic).llm) is None
