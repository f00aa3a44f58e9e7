"""The gate in front of an LLM loop: calls start only while the loop keeps up, and every call still runs."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from workers.llm.admission import LAG_HIGH_S, LAG_LOW_S, MIN_RUNNING, SETTLE_S, UNLIMITED, Gate, calls_waiting

BEHIND = LAG_HIGH_S * 2
ON_TIME = LAG_LOW_S / 2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(test: Callable[[Gate, Clock], Coroutine[Any, Any, None]]) -> None:
    clock = Clock()
    asyncio.run(test(Gate("llm-test", clock, probe_s=3600), clock))  # the test reads the lag itself


async def enter_all(gate: Gate, count: int) -> list[asyncio.Task[None]]:
    """Tasks each entering the gate, after they have all either entered or queued."""
    tasks = [asyncio.create_task(gate.enter()) for _ in range(count)]
    await asyncio.sleep(0)
    return tasks


def test_a_loop_that_keeps_up_lets_every_call_in_at_once() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        entered = await enter_all(gate, 500)
        gate.observe(ON_TIME)

        assert all(task.done() for task in entered)
        assert (gate.running, gate.waiting, gate.limit) == (500, 0, UNLIMITED)

    run(test)


def test_a_loop_behind_lowers_the_limit_to_three_quarters_of_the_calls_running() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 100)
        gate.observe(BEHIND)
        later = await enter_all(gate, 10)

        assert gate.limit == 75
        assert not any(task.done() for task in later)
        assert (gate.running, gate.waiting) == (100, 10)

    run(test)


def test_calls_wait_until_enough_running_calls_have_left() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 100)
        gate.observe(BEHIND)
        later = await enter_all(gate, 10)
        for _ in range(30):
            gate.leave()
        await asyncio.sleep(0)

        assert [task.done() for task in later] == [True] * 5 + [False] * 5
        assert (gate.running, gate.waiting) == (75, 5)

    run(test)


def test_the_limit_is_lowered_again_only_after_the_running_calls_had_time_to_drain() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 100)
        gate.observe(BEHIND)
        clock.now += SETTLE_S / 2
        gate.observe(BEHIND)
        assert gate.limit == 75

        clock.now += SETTLE_S / 2
        gate.observe(BEHIND)
        assert gate.limit == 56

    run(test)


def test_the_limit_never_falls_below_a_few_calls() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 10)
        for _ in range(20):
            gate.observe(BEHIND)
            clock.now += SETTLE_S

        assert gate.limit == MIN_RUNNING

    run(test)


def test_a_loop_on_time_again_raises_the_limit_and_lets_waiting_calls_in() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 64)
        gate.observe(BEHIND)
        later = await enter_all(gate, 20)
        assert gate.limit == 48

        gate.observe(ON_TIME)
        await asyncio.sleep(0)
        assert gate.limit == 54  # an eighth more
        assert gate.running == 64  # still over it: nobody new yet
        assert not any(task.done() for task in later)

        for _ in range(16):
            gate.leave()
        await asyncio.sleep(0)
        assert gate.running == 54
        admitted = sum(task.done() for task in later)
        assert admitted == 6

        gate.observe(ON_TIME)
        await asyncio.sleep(0)
        assert sum(task.done() for task in later) == admitted + 6  # raised to 60: six more in

    run(test)


def test_a_lag_between_the_thresholds_changes_nothing() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 64)
        gate.observe(BEHIND)
        await enter_all(gate, 5)
        gate.observe((LAG_LOW_S + LAG_HIGH_S) / 2)

        assert (gate.limit, gate.waiting) == (48, 5)

    run(test)


def test_a_waiting_call_that_is_cancelled_leaves_the_queue() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 8)
        gate.observe(BEHIND)
        waiting = await enter_all(gate, 2)
        waiting[0].cancel()
        await asyncio.gather(*waiting[:1], return_exceptions=True)
        assert gate.waiting == 1

        for _ in range(3):
            gate.leave()
        await asyncio.sleep(0)

        assert waiting[1].done() and not waiting[1].cancelled()
        assert (gate.running, gate.waiting) == (6, 0)

    run(test)


def test_a_call_let_in_but_cancelled_before_it_ran_gives_its_place_to_the_next() -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 8)
        gate.observe(BEHIND)
        first, second = await enter_all(gate, 2)
        for _ in range(3):
            gate.leave()  # lets `first` in: running 6 of 6
        first.cancel()  # before it resumed
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.sleep(0)

        assert first.cancelled()
        assert second.done() and not second.cancelled()
        assert (gate.running, gate.waiting) == (6, 0)

    run(test)


def test_lowering_the_limit_is_logged_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    async def test(gate: Gate, clock: Clock) -> None:
        await enter_all(gate, 100)
        for _ in range(5):
            gate.observe(BEHIND)
            clock.now += SETTLE_S

    with caplog.at_level(logging.WARNING, logger="agent2389.llm"):
        run(test)

    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "llm-test is 1.0 s behind: at most 75 LLM calls now run at once" in warnings[0]


class CountingGate(Gate):
    readings = 0

    def observe(self, lag_s: float) -> None:
        self.readings += 1
        super().observe(lag_s)


def test_the_loops_lag_is_read_while_calls_run_and_not_on_an_idle_loop() -> None:
    async def test() -> None:
        gate = CountingGate("llm-test", probe_s=0.01)
        await gate.enter()
        while gate.readings < 3:
            await asyncio.sleep(0.01)
        gate.leave()
        readings = gate.readings

        await asyncio.sleep(0.2)  # twenty probes' time: what is measured is that nothing happens in it
        assert gate.readings <= readings + 1

        await gate.enter()  # a call after the idle time starts the readings again
        while gate.readings < readings + 3:
            await asyncio.sleep(0.01)
        gate.leave()

    asyncio.run(asyncio.wait_for(test(), 10))


def test_the_calls_waiting_at_every_gate_of_the_process_are_counted() -> None:
    before = calls_waiting()

    async def test() -> None:
        gates = [Gate(f"llm-{i}", probe_s=3600) for i in range(2)]
        held = []
        for gate in gates:
            for _ in range(8):
                await gate.enter()
            gate.observe(BEHIND)
            held += await enter_all(gate, 2)
        assert calls_waiting() == before + 4

        for call in held:
            call.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        assert calls_waiting() == before

    asyncio.run(test())


def test_counting_them_keeps_no_gate_alive() -> None:
    gate = Gate("llm-gone")
    gone = weakref.ref(gate)
    del gate
    gc.collect()
    assert gone() is None
