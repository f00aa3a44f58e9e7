"""How many LLM calls one event loop runs at once: as many as it keeps up with.

A worker process hands every thread's LLM call to one event loop (:mod:`workers.llm.call_loop`). Past the
machine's capacity each step of a call waits in the loop's queue behind every other call's, and asyncio
counts that wait against the SDK's per-attempt time-out: with 500 threads per process on two saturated
cores, a fifth of the calls failed as time-outs instead of waiting (docs/performance.md, "Fan-in past the
machine's capacity"). :class:`Gate` lets a call begin its request only while the loop runs on time: a timer
on the loop measures how late it fires (the lag); above ``LAG_HIGH_S`` the gate lowers the number of calls
that may run at once, and while the lag is below ``LAG_LOW_S`` with calls waiting it raises it again. A
call waiting at the gate has sent nothing, so no SDK time-out runs for it (its caller's deadline still
does), and a worker that keeps up never meets the gate: it starts with no limit.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

log = logging.getLogger("agent2389.llm")
PROBE_S = 0.1
# A loop a second behind still leaves a call's steps far from the 30 s per-attempt time-out; a tenth of a
# second is what a busy but keeping-up worker shows (its task threads share the interpreter with the loop).
LAG_HIGH_S = 0.5
LAG_LOW_S = 0.1
LOWER_BY = 0.75
# After lowering, the calls already running still have to drain before the lag can show the effect.
SETTLE_S = 1.0
MIN_RUNNING = 4
UNLIMITED = 1_000_000
REPORT_EVERY_S = 60.0
_gates: weakref.WeakSet[Gate] = weakref.WeakSet()
_gates_lock = threading.Lock()


def calls_waiting() -> int:
    """Calls waiting at every gate of this process, for its heartbeat (read from another thread: a
    snapshot, as good as the moment it is read)."""
    with _gates_lock:
        gates = list(_gates)
    return sum(gate.waiting for gate in gates)


class Gate:
    """Calls running at once on one loop, and those waiting to. Use it only on that loop's thread."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic, probe_s: float = PROBE_S) -> None:
        self.limit = UNLIMITED
        self.running = 0
        self._name = name
        self._clock = clock
        self._probe_s = probe_s
        self._watcher: asyncio.Task[None] | None = None
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._lowered_at = -SETTLE_S
        self._reported_at = -REPORT_EVERY_S
        with _gates_lock:
            _gates.add(self)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def enter(self) -> None:
        if self._watcher is None:
            # A context of its own: a task would copy the calling task's, and log under its span.
            self._watcher = asyncio.get_running_loop().create_task(self._watch_lag(), context=contextvars.Context())
        if self.running < self.limit and not self._waiting:
            self.running += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.cancelled():
                self._waiting.remove(turn)
            else:  # let in, then cancelled before it could run: the place goes to the next
                self.leave()
            raise

    def leave(self) -> None:
        self.running -= 1
        self._let_in()

    def observe(self, lag_s: float) -> None:
        """One reading of the loop's lag: lower the limit or raise it."""
        now = self._clock()
        if lag_s > LAG_HIGH_S and now - self._lowered_at >= SETTLE_S:
            self.limit = max(MIN_RUNNING, int(min(self.limit, self.running) * LOWER_BY))
            self._lowered_at = now
            self._report(lag_s, now)
        elif lag_s < LAG_LOW_S and self._waiting and self.running >= self.limit:
            self.limit += max(1, self.limit // 8)
            self._let_in()

    async def _watch_lag(self) -> None:
        """Reads the loop's lag every probe while calls run or wait: an idle loop is not woken."""
        loop = asyncio.get_running_loop()
        try:
            while self.running or self._waiting:
                started = loop.time()
                await asyncio.sleep(self._probe_s)
                self.observe(loop.time() - started - self._probe_s)
        finally:
            self._watcher = None

    def _let_in(self) -> None:
        while self._waiting and self.running < self.limit:
            self._waiting.popleft().set_result(None)
            self.running += 1

    def _report(self, lag_s: float, now: float) -> None:
        if now - self._reported_at < REPORT_EVERY_S:
            return
        self._reported_at = now
        log.warning("%s is %.1f s behind: at most %d LLM calls now run at once, the others wait to start "
                    "(this worker has more threads than its CPU serves; docs/architecture.md)",
                    self._name, lag_s, self.limit)
