"""The fleet-wide limit on LLM calls of one agent: ``[llm] max_concurrency`` calls at once across every
worker process, shared through Redis (the scripts are in workers/llm/limiter_scripts.py).

A call takes a slot, makes its request (with the SDK's retries) and gives the slot back. A call that
finds no free slot joins a queue in Redis and its thread sleeps on an event: a freed slot is handed to
the longest waiting caller by the release itself, and its worker is told over pub/sub, so nothing
spins. A slot is a lease that this process renews every ``RENEW_S``; a worker that dies stops renewing,
and its slots come back ``LEASE_S`` later. Waiters also ask again every ``POLL_S``, which picks up such
slots and covers a lost notification. When the provider answers 429 with ``retry-after``, ``pause``
stops the whole fleet from starting calls of this agent for that long.

Redis failing never fails the call: the limiter lets it through and logs why (the limit protects the
provider's quota; the task matters more).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from agent2389.config.agent import LlmSection
from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from workers.llm import limiter_scripts as scripts
from workers.llm.daily_budget import DailyBudget

log = logging.getLogger("agent2389.llm.limiter")

LEASE_S = 6.0
RENEW_S = 2.0
POLL_S = 1.0
STALE_S = 5.0  # a waiter that has not asked for this long is dropped from the queue
MAX_PAUSE_S = 60.0
UNLIMITED = 1_000_000_000  # slots when only per-minute limits are set


@dataclass(frozen=True)
class Limits:
    """The ``[llm]`` limits of one scope; None is no limit. ``window_s`` is one minute but in tests."""

    max_concurrency: int | None = None
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    window_s: float = 60.0

    @classmethod
    def of(cls, llm: LlmSection) -> Limits:
        return cls(llm.max_concurrency, llm.requests_per_minute, llm.input_tokens_per_minute,
                   llm.output_tokens_per_minute)

    @property
    def any(self) -> bool:
        return any((self.max_concurrency, self.requests_per_minute, self.input_tokens_per_minute,
                    self.output_tokens_per_minute))

    def script_args(self) -> list[int]:
        """ARGV[2..8] of the scripts: slots, lease, staleness, window and the per-window limits."""
        return [self.max_concurrency or UNLIMITED, int(LEASE_S * 1000), int(STALE_S * 1000),
                int(self.window_s * 1000), self.requests_per_minute or 0, self.input_tokens_per_minute or 0,
                self.output_tokens_per_minute or 0]


class FleetLimiter:
    def __init__(self, client: redis.Redis, keys: Keys, scope: str, limits: Limits | int,
                 stats: StatsRecorder | None = None, agent_id: str | None = None) -> None:
        self._redis = client
        self._scope = scope
        self._agent_id = agent_id or scope
        self._limits = limits if isinstance(limits, Limits) else Limits(max_concurrency=limits)
        self._args = self._limits.script_args()
        self._stats = stats
        self._keys = [keys.llm_limit(scope, part) for part in ("holders", "waiters", "seen", "pause", "requests",
                                                              "input_tokens", "output_tokens")]
        self._channel = keys.llm_limit(scope, "granted")
        self._id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count(1)
        self._held: set[str] = set()
        self._waiting: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acquire = client.register_script(scripts.ACQUIRE)
        self._release = client.register_script(scripts.RELEASE)
        self._renew = client.register_script(scripts.RENEW)
        self._pause = client.register_script(scripts.PAUSE)
        self._tokens = client.register_script(scripts.TOKENS)
        self._threads = [threading.Thread(target=self._renew_forever, name=f"limiter-renew-{scope}", daemon=True),
                         threading.Thread(target=self._listen_forever, name=f"limiter-grants-{scope}", daemon=True)]
        for thread in self._threads:
            thread.start()

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one of the fleet's slots for the block; yields the seconds spent waiting for it."""
        member = f"{self._id}:{next(self._counter)}"
        started = time.monotonic()
        held = self._take(member)
        waited = time.monotonic() - started
        if self._stats is not None:
            self._stats.llm_wait(self._agent_id, waited)
        try:
            yield waited
        finally:
            if held:
                self._give_back(member)

    def pause(self, seconds: float) -> None:
        """The provider asked to back off: no call of this scope starts anywhere for ``seconds``."""
        wait_ms = int(min(seconds, MAX_PAUSE_S) * 1000)
        if wait_ms <= 0:
            return
        try:
            if self._pause(keys=[self._keys[3]], args=[wait_ms]):
                log.warning("the LLM provider asked to back off; the fleet pauses %s for %.1f s", self._scope,
                            wait_ms / 1000)
        except redis.RedisError as exc:
            log.warning("could not pause %s fleet-wide (%s)", self._scope, type(exc).__name__)

    def spent(self, input_tokens: int, output_tokens: int) -> None:
        """What a call used, for the per-minute token limits (nothing to do without them)."""
        if not (self._limits.input_tokens_per_minute or self._limits.output_tokens_per_minute):
            return
        try:
            self._tokens(keys=self._keys[5:7], args=[int(self._limits.window_s * 1000), input_tokens, output_tokens])
        except redis.RedisError as exc:
            log.warning("could not count LLM tokens for the per-minute limits (%s)", type(exc).__name__)

    def close(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=3)

    def _take(self, member: str) -> bool:
        """True once the slot is ours; False when Redis failed and the call goes ahead without one."""
        event = threading.Event()
        with self._lock:
            self._waiting[member] = event
        try:
            while True:
                answer = int(self._acquire(keys=self._keys, args=[member, *self._args]))
                if answer == 1:
                    with self._lock:
                        self._held.add(member)
                    return True
                event.wait(min(POLL_S, -answer / 1000) if answer < 0 else POLL_S)
                event.clear()
        except redis.RedisError as exc:
            log.warning("LLM limiter unavailable (%s); calling without a slot", type(exc).__name__)
            self._give_back(member)  # a slot granted meanwhile must not be stranded until its lease ends
            return False
        finally:
            with self._lock:
                self._waiting.pop(member, None)

    def _give_back(self, member: str) -> None:
        with self._lock:
            self._held.discard(member)
        try:
            self._release(keys=self._keys, args=[member, *self._args, self._channel])
        except redis.RedisError as exc:
            log.warning("could not give an LLM slot back (%s); its lease ends in %.0f s", type(exc).__name__,
                        LEASE_S)

    def _renew_forever(self) -> None:
        while not self._stopping.wait(RENEW_S):
            with self._lock:
                held = list(self._held)
            if not held:
                continue
            try:
                self._renew(keys=self._keys[:1], args=[int(LEASE_S * 1000), *held])
            except redis.RedisError as exc:
                log.warning("could not renew LLM slots (%s)", type(exc).__name__)

    def _listen_forever(self) -> None:
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._channel)
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is not None:
                        self._wake(message["data"])
            except redis.RedisError as exc:
                # Waiters still ask every POLL_S: a lost connection only makes grants slower.
                log.warning("LLM limiter lost its notifications (%s); retrying", type(exc).__name__)
                self._stopping.wait(POLL_S)
            finally:
                pubsub.close()

    def _wake(self, data: bytes | str) -> None:
        member = data.decode() if isinstance(data, bytes) else data
        with self._lock:
            event = self._waiting.get(member)
        if event is not None:
            event.set()


class FleetLimits:
    """What a worker hands to its runners so that they can share limits: its Redis and key layout."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def limiter(self, agent_id: str, llm: LlmSection, stats: StatsRecorder | None = None) -> FleetLimiter | None:
        """The limiter of the agent's scope (its ``limit_scope``, else the agent), if it has any limit."""
        limits = Limits.of(llm)
        if not limits.any:
            return None
        return FleetLimiter(self.client, self.keys, llm.limit_scope or agent_id, limits, stats, agent_id)

    def daily_budget(self, agent_id: str, llm: LlmSection) -> DailyBudget | None:
        if llm.daily_token_budget is None:
            return None
        return DailyBudget(self.client, self.keys, agent_id, llm.daily_token_budget)
