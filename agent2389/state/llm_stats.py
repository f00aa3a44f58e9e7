"""What workers record about LLM calls: calls, tokens, cost and time per agent and model, the agent's hour
and day usage windows, and waits for the fleet-wide limiter. StatsRecorder queues these on its batches."""

from __future__ import annotations

from agent2389.state.keys import Keys
from agent2389.state.stats_batch import StatsBatch
from agent2389.state.timeline import TaskEvent, record_event
from agent2389.state.usage import WINDOWS, TokenUsage, bucket


def record_llm_call(batch: StatsBatch, keys: Keys, agent_id: str, model: str, duration_s: float, input_tokens: int,
                    output_tokens: int, ok: bool, task_id: str | None, error: str | None,
                    usage: dict[str, float | None]) -> None:
    key = keys.llm_stats(agent_id, model)
    batch.incr(key, "calls")
    if not ok:
        batch.incr(key, "failures")
    batch.incr(key, "input_tokens", input_tokens)
    batch.incr(key, "output_tokens", output_tokens)
    batch.incr_float(key, "duration_seconds_sum", duration_s)
    batch.set_field(key, "last_call", batch.now)
    batch.add_member(keys.models_index(agent_id), model)
    if task_id is not None:
        record_event(batch, keys, task_id, agent_id, TaskEvent.LLM_CALL, model=model, ok=ok,
                     duration_ms=round(duration_s * 1000, 3), input_tokens=input_tokens,
                     output_tokens=output_tokens, error=error, **usage)


def record_llm_usage(batch: StatsBatch, keys: Keys, agent_id: str, model: str, usage: TokenUsage, cost: float,
                     currency: str | None) -> None:
    key = keys.llm_stats(agent_id, model)
    batch.incr(key, "cache_read_tokens", usage.cache_read_tokens)
    batch.incr(key, "cache_write_tokens", usage.cache_write_tokens)
    batch.add_member(keys.models_index(agent_id), model)
    if currency is not None:
        batch.incr_float(key, "cost", cost)
        batch.set_field(key, "currency", currency)
    now = batch.now
    for window, length_s, _, ttl_s in WINDOWS:
        bucket_key = keys.llm_usage_window(agent_id, window, bucket(now, length_s))
        batch.incr(bucket_key, "calls")
        batch.incr(bucket_key, "input_tokens", usage.input_tokens)
        batch.incr(bucket_key, "output_tokens", usage.output_tokens)
        batch.incr(bucket_key, "cache_read_tokens", usage.cache_read_tokens)
        batch.incr(bucket_key, "cache_write_tokens", usage.cache_write_tokens)
        if cost:
            batch.incr_float(bucket_key, "cost", cost)
        batch.expire(bucket_key, ttl_s)


def record_llm_wait(batch: StatsBatch, keys: Keys, agent_id: str, seconds: float) -> None:
    key = keys.agent_stats(agent_id)
    batch.incr(key, "llm_waits")
    batch.incr_float(key, "llm_wait_seconds_sum", seconds)
