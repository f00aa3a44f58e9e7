"""LLM token usage as the API reports it, what it costs, and the time windows it is added up in.

Workers record usage per agent and model (agent2389.state.stats ``llm_usage``) and in two rolling sets of
buckets per agent: five-minute buckets for "the last hour" and hourly buckets for "the last day". The web
app adds the buckets up (web/usage.py); both sides use the bucket arithmetic here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agent2389.config.agent import PriceTable

PER_MTOK = 1_000_000
# Anthropic's published multipliers of the input price, used when the price table does not say.
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
# (name, bucket length in seconds, buckets that make the window, how long a bucket is kept)
WINDOWS = (("hour", 300, 12, 2 * 3600), ("day", 3600, 24, 26 * 3600))
USAGE_FIELDS = ("calls", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost")


@dataclass(frozen=True)
class TokenUsage:
    """One call's tokens: ``input_tokens`` excludes the cached ones, as Anthropic counts them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


def cost(usage: TokenUsage, price: PriceTable | None) -> float:
    """What ``usage`` costs in ``price.currency``; 0.0 without a price table."""
    if price is None:
        return 0.0
    write = price.cache_write_per_mtok
    read = price.cache_read_per_mtok
    return (usage.input_tokens * price.input_per_mtok
            + usage.output_tokens * price.output_per_mtok
            + usage.cache_write_tokens * (price.input_per_mtok * CACHE_WRITE_FACTOR if write is None else write)
            + usage.cache_read_tokens * (price.input_per_mtok * CACHE_READ_FACTOR if read is None else read)
            ) / PER_MTOK


def bucket(now: float, length_s: int) -> int:
    return int(now // length_s)


def window_buckets(now: float, length_s: int, count: int) -> list[int]:
    """The ``count`` buckets ending with the current one (so "the last hour" is 55 to 60 minutes)."""
    current = bucket(now, length_s)
    return [current - back for back in range(count)]


def day_of(unix_s: float) -> str:
    """The UTC day (YYYY-MM-DD) that ``[llm] daily_token_budget`` counts ``unix_s`` in."""
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%d")
