"""Stats calls gathered for one round trip, merged so that many tasks cost few Redis commands.

Writing each call's commands as they come costs about 25 commands per task in a worker, and redis-py
spends more CPU packing and parsing them than Redis spends running them. Most of them are the same
command again for another task (a counter, the agents index, a trim), so a batch keeps one of each: a
counter gets the sum of its increments, a hash field its last value, a list its new entries in call
order, a key its expiry once, after everything written to it. What depends on order between calls (a
task entering and leaving the in-flight set, the peak reached meanwhile) runs in one script, in order.
The end state in Redis is the same as writing the calls one by one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

# Marks tasks in flight and unmarks them in call order, keeping the highest number of tasks ever in flight
# at once per agent (members "agent:task") and for the whole system. KEYS[1] the in-flight set, KEYS[2] the
# system hash, KEYS[2 + i] agent i's hash; ARGV[1] the stale cutoff, ARGV[2] the number of agents n,
# ARGV[2 + i] agent i's member prefix, then one group per call: "+" or "-", member, agent index, score.
_IN_FLIGHT = """
local n = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local total = redis.call('ZCARD', KEYS[1])
local counts, peaks = {}, {}
for i = 1, n do counts[i] = 0; peaks[i] = 0 end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  for i = 1, n do
    local prefix = ARGV[2 + i]
    if string.sub(member, 1, string.len(prefix)) == prefix then counts[i] = counts[i] + 1 end
  end
end
local peak = 0
for j = 3 + n, #ARGV, 4 do
  local i = tonumber(ARGV[j + 2])
  if ARGV[j] == '+' then
    local added = redis.call('ZADD', KEYS[1], ARGV[j + 3], ARGV[j + 1])
    total = total + added
    counts[i] = counts[i] + added
    if counts[i] > peaks[i] then peaks[i] = counts[i] end
    if total > peak then peak = total end
  else
    local removed = redis.call('ZREM', KEYS[1], ARGV[j + 1])
    total = total - removed
    counts[i] = counts[i] - removed
  end
end
local function raise(key, value)
  if value > 0 and value > tonumber(redis.call('HGET', key, 'max_pipeline_depth_reached') or '0') then
    redis.call('HSET', key, 'max_pipeline_depth_reached', value)
  end
end
for i = 1, n do raise(KEYS[2 + i], peaks[i]) end
raise(KEYS[2], peak)
return total
"""

# Raises hash fields to a value when it is higher: KEYS[i] the hash, ARGV pairs (field, value) aligned.
_RAISE = """
for i, key in ipairs(KEYS) do
  local field, value = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  if value > tonumber(redis.call('HGET', key, field) or '0') then redis.call('HSET', key, field, value) end
end
return 0
"""


class StatsBatch:
    def __init__(self) -> None:
        # When the record being added was made (time.time()): the background writer adds records a batch
        # later, and a timeline ordered by write time would put a worker's start before its queueing.
        self.now = time.time()
        self._increments: dict[tuple[str, str], int] = defaultdict(int)
        self._float_increments: dict[tuple[str, str], float] = defaultdict(float)
        self._fields: dict[str, dict[str, Any]] = defaultdict(dict)
        self._deleted_fields: dict[str, set[str]] = defaultdict(set)
        self._first_fields: dict[str, dict[str, Any]] = defaultdict(dict)
        self._members: dict[str, set[str]] = defaultdict(set)
        self._head_pushes: dict[str, list[Any]] = defaultdict(list)
        self._tail_pushes: dict[str, list[Any]] = defaultdict(list)
        self._list_limits: dict[str, int] = {}
        self._scores: dict[str, dict[str, float]] = defaultdict(dict)
        self._rank_limits: dict[str, int] = {}
        self._maxima: dict[tuple[str, str], float] = {}
        self._expiries: dict[str, int] = {}
        self._in_flight: tuple[str, str, float] | None = None
        self._in_flight_agents: dict[str, tuple[int, str]] = {}
        self._in_flight_calls: list[Any] = []

    def incr(self, key: str, field: str, amount: int = 1) -> None:
        self._increments[key, field] += amount

    def incr_float(self, key: str, field: str, amount: float) -> None:
        self._float_increments[key, field] += amount

    def set_field(self, key: str, field: str, value: Any) -> None:
        self._deleted_fields[key].discard(field)
        self._fields[key][field] = value

    def delete_field(self, key: str, field: str) -> None:
        """HDEL; the later of a set and a delete of one field in a batch wins."""
        self._fields[key].pop(field, None)
        self._deleted_fields[key].add(field)

    def set_field_once(self, key: str, field: str, value: Any) -> None:
        """HSETNX: the first value of the batch, and only if the field is not there yet."""
        self._first_fields[key].setdefault(field, value)

    def raise_field(self, key: str, field: str, value: float) -> None:
        """Set the field to ``value`` if that is higher than what it holds."""
        current = self._maxima.get((key, field))
        if current is None or value > current:
            self._maxima[key, field] = value

    def add_member(self, key: str, member: str) -> None:
        self._members[key].add(member)

    def push_head(self, key: str, value: Any, keep: int) -> None:
        """LPUSH, then keep the ``keep`` newest entries."""
        self._head_pushes[key].append(value)
        self._list_limits[key] = keep

    def push_tail(self, key: str, value: Any) -> None:
        self._tail_pushes[key].append(value)

    def score(self, key: str, member: str, score: float, keep: int) -> None:
        """ZADD, then keep the ``keep`` members of highest score."""
        self._scores[key][member] = score
        self._rank_limits[key] = keep

    def expire(self, key: str, seconds: int) -> None:
        self._expiries[key] = seconds

    def in_flight(self, in_flight_key: str, system_key: str, stale_before: float) -> None:
        """Where the in-flight set and the system-wide peak live; the latest cutoff of the batch applies."""
        self._in_flight = (in_flight_key, system_key, stale_before)

    def start(self, agent_key: str, prefix: str, member: str, score: float) -> None:
        self._in_flight_calls.append(("+", member, self._agent_index(agent_key, prefix), score))

    def finish(self, agent_key: str, prefix: str, member: str) -> None:
        self._in_flight_calls.append(("-", member, self._agent_index(agent_key, prefix), 0))

    def _agent_index(self, agent_key: str, prefix: str) -> int:
        if agent_key not in self._in_flight_agents:
            self._in_flight_agents[agent_key] = (len(self._in_flight_agents) + 1, prefix)
        return self._in_flight_agents[agent_key][0]

    def write(self, pipe: Any) -> None:
        """Queue the batch's commands on a redis-py pipeline (not executed here)."""
        self._write_hashes(pipe)
        self._write_sets_and_lists(pipe)
        if self._maxima:
            maxima = list(self._maxima.items())
            pipe.eval(_RAISE, len(maxima), *(key for (key, _), _ in maxima),
                      *(part for (_, field), value in maxima for part in (field, value)))
        if self._in_flight_calls:
            self._write_in_flight(pipe)
        # Last: an expiry applies to everything written to its key.
        for key, seconds in self._expiries.items():
            pipe.expire(key, seconds)

    def _write_hashes(self, pipe: Any) -> None:
        for (key, field), amount in self._increments.items():
            pipe.hincrby(key, field, amount)
        for (key, field), amount_f in self._float_increments.items():
            pipe.hincrbyfloat(key, field, amount_f)
        for key, fields in self._fields.items():
            if fields:
                pipe.hset(key, mapping=fields)
        for key, names in self._deleted_fields.items():
            if names:
                pipe.hdel(key, *names)
        for key, first_fields in self._first_fields.items():
            for field, value in first_fields.items():
                pipe.hsetnx(key, field, value)

    def _write_sets_and_lists(self, pipe: Any) -> None:
        for key, members in self._members.items():
            pipe.sadd(key, *members)
        for key, values in self._head_pushes.items():
            pipe.lpush(key, *values)
            pipe.ltrim(key, 0, self._list_limits[key] - 1)
        for key, values in self._tail_pushes.items():
            pipe.rpush(key, *values)
        for key, scores in self._scores.items():
            pipe.zadd(key, scores)
            pipe.zremrangebyrank(key, 0, -self._rank_limits[key] - 1)

    def _write_in_flight(self, pipe: Any) -> None:
        # EVAL rather than EVALSHA: redis-py asks Redis whether a pipeline's scripts exist (SCRIPT
        # EXISTS, one more round trip) before every execute; EVAL sends a few hundred bytes instead.
        assert self._in_flight is not None, "in_flight() names the keys before start() and finish()"
        in_flight_key, system_key, stale_before = self._in_flight
        agents = list(self._in_flight_agents.items())
        keys = [in_flight_key, system_key, *(agent_key for agent_key, _ in agents)]
        args: list[Any] = [stale_before, len(agents), *(prefix for _, (_, prefix) in agents)]
        for call in self._in_flight_calls:
            args.extend(call)
        pipe.eval(_IN_FLIGHT, len(keys), *keys, *args)
