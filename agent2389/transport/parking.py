"""Parked messages: a copy of every queued message, so a worker killed while one is in transit loses nothing.

kombu's Redis transport takes a message off its queue with ``BRPOP`` and only then, in a second command,
records it as unacknowledged. A worker that dies in between (or whose socket Redis still writes to while
the kernel tears a killed process down) takes the message with it. Parking closes that window:

- whoever pushes a message onto a queue also parks it, in the same transaction: ``parked:{queue}`` maps
  its delivery tag to the exact bytes pushed;
- the worker that receives it unparks it in the same transaction that records it as unacknowledged;
- so a parked message is either on its queue or in transit. Every few seconds a worker sweeps the queues
  it consumes (one Lua script, atomic): a parked message that is not on its queue has been in transit
  since the sweep that first saw it; once that is longer than the visibility timeout, no live worker
  holds it and it goes back on its queue.

A live worker receives and records a message within milliseconds; only a worker frozen longer than the
visibility timeout between the two could see its message run elsewhere too, the same bound that kombu
applies to a worker that stops renewing its leases.
"""

from __future__ import annotations

from typing import Any

import redis

# Where the queue key of a message travels inside it, so a worker knows what to unpark without asking Redis.
PARKED_IN = "x_agent2389_parked_in"


def parked_key(queue_key: str) -> str:
    return f"parked:{queue_key}"


def suspects_key(queue_key: str) -> str:
    return f"parked_suspects:{queue_key}"


# KEYS: queue, parked, suspects (full names). ARGV: seconds in transit before a message is given back, the
# caller's clock (seconds; the caller's, as the batch fetch's lease times are).
# Returns the delivery tags put back on the queue.
_SWEEP = """
local parked = redis.call('HLEN', KEYS[2])
if parked <= redis.call('LLEN', KEYS[1]) then
  redis.call('DEL', KEYS[3])
  return {}
end
local queued = {}
for _, payload in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do queued[payload] = true end
local seen = {}
local before = redis.call('HGETALL', KEYS[3])
for i = 1, #before, 2 do seen[before[i]] = tonumber(before[i + 1]) end
redis.call('DEL', KEYS[3])
local grace, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local returned = {}
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local tag, payload = entries[i], entries[i + 1]
  if not queued[payload] then
    local since = seen[tag] or now
    if now - since >= grace then
      redis.call('RPUSH', KEYS[1], payload)
      returned[#returned + 1] = tag
    else
      redis.call('HSET', KEYS[3], tag, since)
    end
  end
end
return returned
"""


class ParkingSweeper:
    """Gives back to their queues the parked messages no live worker received in time."""

    def __init__(self, client: redis.Redis, key_prefix: str, grace_s: int) -> None:
        # A plain client with full key names: kombu's prefixing client only prefixes a script's first key.
        self._script = client.register_script(_SWEEP)
        self._prefix = key_prefix
        self._grace_s = grace_s

    def sweep(self, queue_key: str, now: float) -> list[str]:
        """Give back what was in transit longer than the grace time, ``now`` (seconds) by the caller's clock."""
        keys = [self._prefix + k for k in (queue_key, parked_key(queue_key), suspects_key(queue_key))]
        returned: Any = self._script(keys=keys, args=[self._grace_s, repr(now)])
        return [t.decode() if isinstance(t, bytes) else str(t) for t in returned or []]


class ParkingPipeline:
    """Wraps the pipeline kombu restores a message with, so the message is parked again as it is pushed."""

    def __init__(self, pipe: Any, delivery_tag: str) -> None:
        self._pipe = pipe
        self._tag = delivery_tag

    def lpush(self, queue_key: str, payload: str) -> Any:
        self._pipe.hset(parked_key(queue_key), self._tag, payload)
        return self._pipe.lpush(queue_key, payload)

    def rpush(self, queue_key: str, payload: str) -> Any:
        self._pipe.hset(parked_key(queue_key), self._tag, payload)
        return self._pipe.rpush(queue_key, payload)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)
