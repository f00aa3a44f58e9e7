"""``[llm] daily_token_budget``: the tokens one agent may use per UTC day, counted across the fleet in Redis.

Before each LLM call the agent's count for today is read; once it has reached the budget the call is
not made and the task ends with ``llm_error`` "daily budget exhausted". After each call its tokens (all
four kinds) are added. The budget is checked before a call whose size is not known yet, so the last
call of a day can overshoot it by its own usage; the day's count expires two days later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from agent2389.protocol.errors import LLMError
from agent2389.state.keys import Keys
from agent2389.state.usage import TokenUsage, day_of

log = logging.getLogger("agent2389.llm.budget")
KEEP_S = 2 * 86400


class DailyBudget:
    def __init__(self, client: redis.Redis, keys: Keys, agent_id: str, tokens: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._keys = keys
        self._agent_id = agent_id
        self._tokens = tokens
        self._clock = clock

    def check(self) -> None:
        """Raises :class:`LLMError` when today's budget is spent (a Redis failure lets the call through)."""
        day = day_of(self._clock())
        try:
            used = int(self._redis.get(self._keys.llm_daily_tokens(self._agent_id, day)) or 0)
        except redis.RedisError as exc:
            log.warning("daily token budget not checked (%s)", type(exc).__name__)
            return
        if used >= self._tokens:
            raise LLMError(f"daily budget exhausted: {used} of {self._tokens} tokens used today (UTC "
                           f"{day}; [llm] daily_token_budget); the agent answers again tomorrow")

    def spend(self, usage: TokenUsage) -> None:
        key = self._keys.llm_daily_tokens(self._agent_id, day_of(self._clock()))
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.incrby(key, usage.total)
            pipe.expire(key, KEEP_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("daily token budget not counted (%s)", type(exc).__name__)
