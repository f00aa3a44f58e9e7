"""The event loop the LLM calls run on: the callers' threads only wait, and nothing waits forever."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from agent2389.logs import JsonFormatter, span
from agent2389.protocol.errors import LLMError
from workers.llm.admission import PROBE_S
from workers.llm.call_loop import CALLS_PER_CLIENT, CallLoop, LoopClient, async_hooks
from workers.llm.policy import ssl_context


@pytest.fixture
def loop() -> Iterator[CallLoop]:
    call_loop = CallLoop("test-llm")
    yield call_loop
    call_loop.close()


def test_calls_from_many_threads_all_run_on_the_loops_one_thread(loop: CallLoop) -> None:
    async def where() -> int:
        await asyncio.sleep(0.01)
        return threading.get_ident()

    with ThreadPoolExecutor(50) as callers:
        ran_on = set(callers.map(lambda _: loop.run(where, deadline_s=10), range(200)))

    assert len(ran_on) == 1
    assert ran_on != {threading.get_ident()}


def test_a_calls_exception_reaches_its_caller_as_it_is(loop: CallLoop) -> None:
    async def fail() -> None:
        raise ValueError("the SDK's own error")

    with pytest.raises(ValueError, match="the SDK's own error"):
        loop.run(fail, deadline_s=10)


def test_a_call_past_its_deadline_is_cancelled_and_fails_with_an_llm_error(loop: CallLoop) -> None:
    cancelled = threading.Event()

    async def hang() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(LLMError, match=r"did not end within 0\.2 s"):
        loop.run(hang, deadline_s=0.2)
    assert cancelled.wait(5)


class Noticed(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.event = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(JsonFormatter().format(record))  # formatted where it is logged: with its span
        self.event.set()


def test_a_loop_that_fell_behind_holds_new_calls_at_its_gate_until_it_is_on_time_again(loop: CallLoop) -> None:
    noticed = Noticed()
    logging.getLogger("agent2389.llm").addHandler(noticed)
    in_flight = threading.Semaphore(0)

    async def long_call() -> None:
        in_flight.release()
        await asyncio.sleep(2)

    async def hold_the_loop() -> None:
        time.sleep(0.8)  # as a loop with more calls than its CPU serves would be held

    def call_in_a_task(call: Callable[[], Coroutine[Any, Any, None]]) -> None:
        with span("task_processing", task_id="a-task"):
            loop.run(call, deadline_s=30)

    def timed_call() -> float:
        submitted = time.monotonic()
        started: list[float] = []

        async def note_start() -> None:
            started.append(time.monotonic())

        loop.run(note_start, deadline_s=30)
        return started[0] - submitted

    try:
        with ThreadPoolExecutor(25) as callers:
            first = [callers.submit(call_in_a_task, long_call) for _ in range(20)]
            assert all(in_flight.acquire(timeout=5) for _ in first)
            loop.run(hold_the_loop, deadline_s=30)
            assert noticed.event.wait(5), "the gate did not notice that the loop fell behind"
            waits = list(callers.map(lambda _: timed_call(), range(5)))
            assert all(call.result(30) is None for call in first)
    finally:
        logging.getLogger("agent2389.llm").removeHandler(noticed)

    warning = json.loads(noticed.messages[0])
    assert "behind: at most" in warning["fields"]["message"]
    assert "span" not in warning  # the gate's, not the task's whose call happened to start its watcher
    assert max(waits) >= PROBE_S  # without the gate a call starts within milliseconds


class HangingCall:
    """A call waiting on the loop in a thread of its own; ``outcome`` is what it raised."""

    def __init__(self, loop: CallLoop) -> None:
        self.started, self.ended = threading.Event(), threading.Event()
        self.outcome: list[BaseException] = []
        self._loop = loop
        threading.Thread(target=self._call, daemon=True).start()
        assert self.started.wait(5)

    async def _hang(self) -> None:
        self.started.set()
        await asyncio.sleep(60)

    def _call(self) -> None:
        try:
            self._loop.run(self._hang, deadline_s=60)
        except BaseException as exc:  # the test looks at whatever it was
            self.outcome.append(exc)
        self.ended.set()


def test_closing_the_loop_ends_a_waiting_call_with_an_llm_error_and_runs_the_last_step_first() -> None:
    loop = CallLoop("test-llm")
    closed_client = threading.Event()

    async def close_client() -> None:
        closed_client.set()

    call = HangingCall(loop)
    loop.close(close_client)

    assert call.ended.wait(5)
    assert closed_client.is_set()
    assert len(call.outcome) == 1 and isinstance(call.outcome[0], LLMError)
    assert "shutting down" in str(call.outcome[0])


def test_a_client_that_never_finishes_closing_does_not_hang_the_shutdown_and_the_waiting_call_still_ends() -> None:
    loop = CallLoop("test-llm")

    async def close_forever() -> None:
        await asyncio.Event().wait()

    call = HangingCall(loop)
    closing = threading.Thread(target=loop.close, args=(close_forever,), kwargs={"wait_s": 0.3}, daemon=True)
    closing.start()

    closing.join(10)
    assert not closing.is_alive(), "close() hung on a client that never closed"
    assert call.ended.wait(5)
    assert isinstance(call.outcome[0], LLMError) and "shutting down" in str(call.outcome[0])


def test_a_call_after_close_starts_the_loop_again(loop: CallLoop) -> None:
    async def answer() -> str:
        return "answered"

    assert loop.run(answer, deadline_s=10) == "answered"
    loop.close()
    assert loop.run(answer, deadline_s=10) == "answered"


class Client:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def test_a_loop_client_is_made_once_and_closed_on_its_loop() -> None:
    made: list[Client] = []

    def make() -> Client:
        made.append(Client())
        return made[-1]

    client = LoopClient("test-llm", make, deadline_s=10)

    async def same(c: Client) -> Client:
        return c

    assert client.run(same) is client.run(same) is made[0]
    client.close()
    assert made[0].closed
    assert client.run(same) is made[1]  # a call after close makes a new client, as a reconnect would
    client.close()


def test_async_hooks_run_a_success_on_the_loop_and_an_error_response_off_it(loop: CallLoop) -> None:
    seen: dict[int, int] = {}
    hook = async_hooks(lambda response: seen.__setitem__(response.status_code, threading.get_ident()))[0]

    async def respond(status: int) -> int:
        await hook(httpx2.Response(status))
        return threading.get_ident()

    loop_thread = loop.run(lambda: respond(200), deadline_s=10)
    loop.run(lambda: respond(429), deadline_s=10)

    assert seen[200] == loop_thread
    assert seen[429] != loop_thread


def test_calls_one_at_a_time_all_use_the_first_client_and_its_warm_connections() -> None:
    made: list[Client] = []
    client = LoopClient("test-llm", lambda: _made(made), deadline_s=10)

    async def same(c: Client) -> Client:
        return c

    used = {id(client.run(same)) for _ in range(100)}
    client.close()
    assert used == {id(made[0])} and len(made) == 1


def test_many_calls_at_once_spread_over_clients_of_at_most_calls_per_client_each() -> None:
    made: list[Client] = []
    client = LoopClient("test-llm", lambda: _made(made), deadline_s=10)
    at_once = CALLS_PER_CLIENT * 3 + 1
    holding: dict[int, int] = {}
    everyone_in = asyncio.Event()  # made here, used only on the client's loop

    async def hold(c: Client) -> None:
        holding[id(c)] = holding.get(id(c), 0) + 1
        if sum(holding.values()) == at_once:
            everyone_in.set()
        await asyncio.wait_for(everyone_in.wait(), 10)  # every call is in flight at the same moment

    with ThreadPoolExecutor(at_once) as callers:
        list(callers.map(lambda _: client.run(hold), range(at_once)))
    client.close()

    assert len(made) == 4
    assert sorted(holding.values()) == [1, CALLS_PER_CLIENT, CALLS_PER_CLIENT, CALLS_PER_CLIENT]
    assert all(c.closed for c in made)


def _made(made: list[Client]) -> Client:
    made.append(Client())
    return made[-1]


def test_the_clients_share_one_tls_context_that_still_verifies_certificates_and_host_names() -> None:
    context = ssl_context()
    assert context is ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
