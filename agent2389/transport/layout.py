"""Where kombu's Redis transport keeps things, for readers outside the transport (queue depths, leases)."""

from __future__ import annotations

# A queue's messages of priority p > 0 live in "{queue}\x06\x16{p}" (kombu.transport.redis.Channel.sep
# and .priority_steps).
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
# Delivered-but-unacknowledged messages: a hash tag -> [payload, exchange, routing key] and a sorted set
# tag -> delivery time (Channel.unacked_key and .unacked_index_key), both under the global key prefix.
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"


def priority_lists(queue_key: str) -> list[str]:
    """Every Redis list kombu may keep a queue's waiting messages in: one per priority step."""
    return [queue_key] + [f"{queue_key}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS[1:]]
