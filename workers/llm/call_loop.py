"""The event loop an SDK-based provider makes its HTTP calls on, and the async client that lives on it.

A fan-in worker has hundreds of Celery threads each waiting on an LLM call. With the SDKs' blocking
clients every one of those threads ran its own HTTP client code (sending, parsing, the response models)
and they took turns at the one interpreter: at 500 threads a call cost about twice its CPU at 50
(docs/performance.md). Here a Celery thread hands its request to one asyncio event loop in a thread of
its own and sleeps on the result: the SDK's async client does the HTTP work for all of them on that one
thread, and the waiting threads cost nothing until their answer is there.

Each provider owns one :class:`LoopClient` and its :class:`CallLoop` (so one loop per agent in each worker
process); ``close`` closes the clients on the loop and then stops it, and a call arriving after that
starts both again, as the blocking client would have reopened its connections. A loop's
:class:`~workers.llm.admission.Gate` holds calls back from starting while the loop falls behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

import httpx2

from agent2389.protocol.errors import LLMError
from workers.llm.admission import Gate

log = logging.getLogger("agent2389.llm")
T = TypeVar("T")
# Closing the clients cancels what is left and closes sockets without waiting for the peer, so this bound
# is never reached in practice; it is there so that a client library that did wait cannot hang a shutdown.
CLOSE_WAIT_S = 10.0
SyncHook = Callable[[httpx2.Response], None]
AsyncHook = Callable[[httpx2.Response], Awaitable[None]]


class CallLoop:
    """One asyncio event loop in a daemon thread, started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._gate: Gate | None = None
        self._lock = threading.Lock()

    def run(self, call: Callable[[], Coroutine[Any, Any, T]], deadline_s: float) -> T:
        """Runs ``call()`` on the loop and waits for its result or exception. A call still running after
        ``deadline_s`` (a bound the SDK's own time-outs should never reach) is cancelled: LLMError. The
        deadline counts the wait at the gate; the SDK's time-outs begin after it."""
        loop, gate = self._running()
        future = asyncio.run_coroutine_threadsafe(_through(gate, call), loop)
        try:
            return future.result(deadline_s)
        except concurrent.futures.CancelledError:
            raise LLMError("the LLM call was cancelled: the worker is shutting down") from None
        except TimeoutError:
            if future.done():
                raise  # the call itself raised it
            future.cancel()
            raise LLMError(f"the LLM call did not end within {deadline_s:g} s") from None

    def close(self, last: Callable[[], Coroutine[Any, Any, None]] | None = None,
              wait_s: float = CLOSE_WAIT_S) -> None:
        """Runs ``last()`` (closing the client), cancels what is still running and stops the thread, waiting
        at most about ``wait_s`` for each; a loop that does not stop in time is left to its daemon thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = self._gate = None
        if loop is None or thread is None:
            return
        if last is not None:
            _run_bounded(loop, last(), wait_s, f"closing the clients on {self._name}")
        # Even when closing the clients failed or hung: the calls' threads are waiting.
        _run_bounded(loop, _cancel_calls(), wait_s, f"cancelling the calls on {self._name}")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(wait_s)
        if not thread.is_alive():
            loop.close()

    def _running(self) -> tuple[asyncio.AbstractEventLoop, Gate]:
        with self._lock:
            if self._loop is None or self._gate is None:
                self._loop, self._gate = asyncio.new_event_loop(), Gate(self._name)
                self._thread = threading.Thread(target=self._loop.run_forever, name=self._name, daemon=True)
                self._thread.start()
            return self._loop, self._gate


async def _through(gate: Gate, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
    await gate.enter()
    try:
        return await call()
    finally:
        gate.leave()


def _run_bounded(loop: asyncio.AbstractEventLoop, step: Coroutine[Any, Any, None], wait_s: float,
                 what: str) -> None:
    running = asyncio.run_coroutine_threadsafe(step, loop)
    try:
        running.result(wait_s)
    except TimeoutError:
        running.cancel()
        log.warning("%s took longer than %g s; the worker goes on stopping", what, wait_s)
    except Exception as exc:  # best effort: what matters is that the loop stops
        log.warning("%s failed (%s); the worker goes on stopping", what, type(exc).__name__)


async def _cancel_calls() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class AsyncCloseable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=AsyncCloseable)

# httpx's async connection pool walks every connection it holds, probing each idle one's socket, whenever a
# request joins or leaves it: with 500 calls at once on one client that walk was most of a call's CPU
# (5 ms a call against 1.8 ms with 32 clients; docs/performance.md). So calls fill one client up to this
# many at once before the next client is used: a quiet agent keeps using one client and its warm
# connections, a busy worker spreads over small pools.
CALLS_PER_CLIENT = 32
MAX_CLIENTS = 32


class ClientPool(Generic[C]):
    """Async clients of one SDK on one event loop, made on demand: each call takes the first client with
    fewer than ``CALLS_PER_CLIENT`` calls in flight. ``get`` may be called from any thread; ``use`` and
    ``close`` only on the loop the clients belong to."""

    def __init__(self, make: Callable[[], C]) -> None:
        self._make = make
        self._clients: list[C] = []
        self._calls: list[int] = []  # in flight per client; only the loop's thread changes it
        self._lock = threading.Lock()

    def get(self) -> C:
        """The first client, made if there is none (raises what making it raises)."""
        with self._lock:
            if not self._clients:
                self._add()
            return self._clients[0]

    async def use(self, call: Callable[[C], Coroutine[Any, Any, T]]) -> T:
        index = self._pick()
        calls = self._calls
        calls[index] += 1
        try:
            return await call(self._clients[index])
        finally:
            calls[index] -= 1

    async def close(self) -> None:
        with self._lock:
            clients, self._clients, self._calls = self._clients, [], []
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)

    def _pick(self) -> int:
        for index, count in enumerate(self._calls):
            if count < CALLS_PER_CLIENT:
                return index
        with self._lock:
            if len(self._clients) < MAX_CLIENTS:
                self._add()
                return len(self._clients) - 1
        return min(range(len(self._calls)), key=self._calls.__getitem__)

    def _add(self) -> None:
        self._clients.append(self._make())
        self._calls.append(0)


class LoopClient(Generic[C]):
    """A :class:`ClientPool` on a :class:`CallLoop` of its own, for callers on other threads."""

    def __init__(self, name: str, make: Callable[[], C], deadline_s: float) -> None:
        self._loop = CallLoop(name)
        self._pool = ClientPool(make)
        self._deadline_s = deadline_s

    def get(self) -> C:
        return self._pool.get()

    def run(self, call: Callable[[C], Coroutine[Any, Any, T]]) -> T:
        return self._loop.run(lambda: self._pool.use(call), self._deadline_s)

    def close(self) -> None:
        self._loop.close(self._pool.close)


def async_hooks(*hooks: SyncHook) -> list[AsyncHook]:
    """httpx's async client awaits its hooks. A success (the common case) runs them on the loop; an error
    response runs them in a thread, because a hook may then write to Redis (a 429 pauses the fleet) and
    the loop must not wait on that."""

    def wrap(hook: SyncHook) -> AsyncHook:
        async def run(response: httpx2.Response) -> None:
            if response.status_code < 400:
                hook(response)
            else:
                await asyncio.to_thread(hook, response)

        return run

    return [wrap(hook) for hook in hooks]
