"""The Lua scripts of the fleet-wide LLM limiter (workers/llm/limiter.py), each one atomic in Redis.

Keys of one scope (an agent): KEYS[1] ``holders``, a sorted set of slot holders scored by the time
their lease ends (ms); KEYS[2] ``waiters``, callers waiting for a slot scored by arrival (ms), the
queue's order; KEYS[3] ``seen``, the same waiters scored by when they last asked (a waiter that stops
asking died with its worker and is dropped); KEYS[4] ``pause``, set with a time-to-live while the
provider asked the fleet to back off. Times come from Redis's clock, so hosts need not agree on theirs.
"""

from __future__ import annotations

# Drops expired holders and dead waiters; ``now`` in ms. Shared head of the scripts below.
_HOUSEKEEPING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]))) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
"""

# ARGV: member, max holders, lease ms, stale ms. Returns 1 (the slot is the member's), 0 (wait for a
# grant or the next poll) or minus the ms left of a pause.
ACQUIRE = _HOUSEKEEPING + """
local member, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function grant()
  redis.call('ZADD', KEYS[1], now + lease, member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  return 1
end
if redis.call('ZSCORE', KEYS[1], member) then return grant() end
local paused = redis.call('PTTL', KEYS[4])
local rank = redis.call('ZRANK', KEYS[2], member)
if paused <= 0 then
  local ahead = rank or redis.call('ZCARD', KEYS[2])
  if ahead < limit - redis.call('ZCARD', KEYS[1]) then return grant() end
end
if not rank then redis.call('ZADD', KEYS[2], now, member) end
redis.call('ZADD', KEYS[3], now, member)
if paused > 0 then return -paused end
return 0
"""

# ARGV: member, max holders, lease ms, stale ms, channel. Frees the member's slot and hands every free
# slot to the longest waiting callers, telling their workers on ``channel``. Returns how many it granted.
RELEASE = _HOUSEKEEPING + """
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('PTTL', KEYS[4]) > 0 then return 0 end
local granted = 0
while redis.call('ZCARD', KEYS[1]) < limit do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not first then break end
  redis.call('ZREM', KEYS[2], first)
  redis.call('ZREM', KEYS[3], first)
  redis.call('ZADD', KEYS[1], now + lease, first)
  redis.call('PUBLISH', ARGV[5], first)
  granted = granted + 1
end
return granted
"""

# ARGV: lease ms, then the members this worker holds. Extends the lease of those still held (never
# re-adds one that expired: its slot may be someone else's now).
RENEW = """
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', until_ms, ARGV[i])
end
return renewed
"""

# ARGV: pause ms. Lengthens the pause to at least that long (never shortens one in force).
PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  return 1
end
return 0
"""
