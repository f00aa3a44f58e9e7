"""Taking a backlog off the queues several messages per round trip, each recorded as it is taken.

kombu's Redis transport fetches one message per ``BRPOP`` and records it as unacknowledged in a second
round trip: two round trips and a turn of the worker's event loop per task. Under a backlog a worker that
has room for more takes up to ``FETCH_BATCH`` further messages in one Lua script, which pops each message
and, in the same atomic step, records it as unacknowledged (kombu's ``unacked`` hash and index) and
unparks it (agent2389/transport/parking.py). Nothing is ever in transit between the two, so nothing can be lost
there either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from kombu.utils.json import loads

from agent2389.transport.parking import PARKED_IN, parked_key

FETCH_BATCH = 10

# KEYS: unacked hash, unacked index, then one queue list per queue. ARGV: how many, the lease's start time,
# the full name of a parked hash without its queue. Returns {queue position (1-based), payload} pairs, in the
# order taken.
_FETCH = """
local want, now, parked = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local taken = {}
local taken_count = 0
for position = 3, #KEYS do
  while taken_count < want do
    local payload = redis.call('RPOP', KEYS[position])
    if not payload then break end
    local ok, message = pcall(cjson.decode, payload)
    local properties = ok and type(message) == 'table' and message['properties']
    local tag = properties and properties['delivery_tag']
    if type(tag) ~= 'string' then
      -- Not a message kombu could take either: back where it was, for the one-by-one path to deal with.
      redis.call('RPUSH', KEYS[position], payload)
      break
    end
    local delivery = properties['delivery_info'] or {}
    redis.call('ZADD', KEYS[2], now, tag)
    redis.call('HSET', KEYS[1], tag, '[' .. payload .. ',' .. cjson.encode(delivery['exchange'] or '') .. ','
      .. cjson.encode(delivery['routing_key'] or '') .. ']')
    local parked_in = properties['""" + PARKED_IN + """']
    if type(parked_in) == 'string' then redis.call('HDEL', parked .. parked_in, tag) end
    taken[#taken + 1] = position - 2
    taken[#taken + 1] = payload
    taken_count = taken_count + 1
  end
  if taken_count >= want then break end
end
return taken
"""


@dataclass(frozen=True)
class Fetched:
    queue: str
    message: dict[str, Any]

    @property
    def delivery_tag(self) -> str:
        return str(self.message["properties"]["delivery_tag"])


class BatchFetcher:
    def __init__(self, client: redis.Redis, key_prefix: str, unacked_key: str, unacked_index_key: str) -> None:
        # A plain client and full key names: kombu's prefixing client only prefixes a script's first key.
        self._script = client.register_script(_FETCH)
        self._prefix = key_prefix
        self._unacked = key_prefix + unacked_key
        self._unacked_index = key_prefix + unacked_index_key

    def fetch(self, queues: list[str], count: int, now: float) -> list[Fetched]:
        """Take up to ``count`` messages off ``queues`` (in that order), recorded as unacknowledged."""
        if count <= 0 or not queues:
            return []
        keys = [self._unacked, self._unacked_index, *(self._prefix + q for q in queues)]
        taken: Any = self._script(keys=keys, args=[count, repr(now), self._prefix + parked_key("")])
        pairs = list(taken or [])
        return [Fetched(queues[int(pairs[i]) - 1], loads(pairs[i + 1])) for i in range(0, len(pairs), 2)]
