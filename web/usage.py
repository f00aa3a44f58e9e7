"""LLM usage per agent over the last hour and day, added up from the buckets workers write
(agent2389.state.usage), and the per-agent LLM figures ``/api/agents`` and ``/metrics`` show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from agent2389.state.keys import Keys
from agent2389.state.usage import USAGE_FIELDS, WINDOWS, day_of, window_buckets

Windows = dict[str, dict[str, float]]


def read_windows(client: redis.Redis, keys: Keys, agent_ids: Sequence[str], now: float) -> dict[str, Windows]:
    """``{agent: {"hour": {field: sum}, "day": {...}, "today": {"tokens": n}}}`` in one round trip ("today":
    the UTC day's count of ``[llm] daily_token_budget``)."""
    plan = [(agent_id, window, keys.llm_usage_window(agent_id, window, index))
            for agent_id in agent_ids
            for window, length_s, count, _ in WINDOWS
            for index in window_buckets(now, length_s, count)]
    if not plan:
        return {}
    pipe = client.pipeline(transaction=False)
    for _, _, key in plan:
        pipe.hgetall(key)
    for agent_id in agent_ids:
        pipe.get(keys.llm_daily_tokens(agent_id, day_of(now)))
    found: dict[str, Windows] = {a: {w: dict.fromkeys(USAGE_FIELDS, 0.0) for w, *_ in WINDOWS} for a in agent_ids}
    replies = pipe.execute()
    for agent_id, today in zip(agent_ids, replies[len(plan):], strict=True):
        found[agent_id]["today"] = {"tokens": float(today or 0)}
    for (agent_id, window, _), raw in zip(plan, replies, strict=False):
        totals = found[agent_id][window]
        for name, value in raw.items():
            name = name.decode() if isinstance(name, bytes) else name
            if name in totals:
                totals[name] += float(value)
    return found


def window_summary(totals: dict[str, float]) -> dict[str, Any]:
    tokens = {name: int(totals.get(name, 0)) for name in USAGE_FIELDS if name.endswith("_tokens")}
    return {"calls": int(totals.get("calls", 0)), **tokens, "total_tokens": sum(tokens.values()),
            "cost": round(totals.get("cost", 0.0), 6)}


def cache_hit_ratio(cache_read: float, cache_write: float, uncached_input: float) -> float:
    """Share of the input tokens that were read from the prompt cache (0.0 before any input: the runbook's
    ``jq`` lines read /metrics, where no field is null)."""
    total = cache_read + cache_write + uncached_input
    return round(cache_read / total, 4) if total else 0.0


def llm_usage(models: dict[str, dict[str, str]], stats: dict[str, str], windows: Windows) -> dict[str, Any]:
    """An agent's cache tokens, cost, limiter waits and usage windows, for ``/api/agents``."""
    def total(name: str) -> float:
        return sum(float(raw.get(name, 0) or 0) for raw in models.values())

    currencies = sorted({raw["currency"] for raw in models.values() if raw.get("currency")})
    waits = int(float(stats.get("llm_waits", 0) or 0))
    wait_s = float(stats.get("llm_wait_seconds_sum", 0) or 0)
    usage: dict[str, Any] = {
        "input_tokens": int(total("input_tokens")),
        "output_tokens": int(total("output_tokens")),
        "cache_read_tokens": int(total("cache_read_tokens")),
        "cache_write_tokens": int(total("cache_write_tokens")),
        "cache_hit_ratio": cache_hit_ratio(total("cache_read_tokens"), total("cache_write_tokens"),
                                           total("input_tokens")),
        "cost": round(total("cost"), 6),
        "last_hour": window_summary(windows.get("hour", {})),
        "last_day": window_summary(windows.get("day", {})),
        "tokens_today": int(windows.get("today", {}).get("tokens", 0)),
        "limiter_waits": waits,
        "limiter_wait_seconds": round(wait_s, 3),
        "limiter_avg_wait_ms": round(wait_s * 1000 / waits, 3) if waits else 0.0,
    }
    if len(currencies) == 1:  # only with a price table (costs in several currencies do not add up)
        usage["currency"] = currencies[0]
    return usage
