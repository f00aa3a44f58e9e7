"""The Lua scripts of the fleet-wide LLM limiter (workers/llm/limiter.py), each one atomic in Redis.

Keys of one scope (an agent): KEYS[1] ``holders``, a sorted set of slot holders scored by the time
their lease ends (ms); KEYS[2] ``waiters``, callers waiting for a slot scored by arrival (ms), the
queue's order; KEYS[3] ``seen``, the same waiters scored by when they last asked (a waiter that stops
asking died with its worker and is dropped); KEYS[4] ``pause``, set with a time-to-live while the
provider asked the fleet to back off; KEYS[5] ``requests``, calls started in the last window (sorted set
scored by start, ms); KEYS[6] and KEYS[7] ``input_tokens`` and ``output_tokens``, tokens the API reported
per second (hash: unix second -> tokens). Times come from Redis's clock, so hosts need not agree on theirs.
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

# How long (ms) the per-minute limits make a new call wait; 0 when it may start. ARGV[5] the window (ms),
# ARGV[6..8] requests, input tokens and output tokens allowed per window (0: no limit).
_WINDOWS = """
local window = tonumber(ARGV[5])
local function tokens_wait(key, limit)
  if limit <= 0 then return 0 end
  local total, oldest, old = 0, nil, {}
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local second = tonumber(fields[i])
    if second * 1000 <= now - window then
      old[#old + 1] = fields[i]
    else
      total = total + tonumber(fields[i + 1])
      if not oldest or second < oldest then oldest = second end
    end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
  if total < limit or not oldest then return 0 end
  return math.max(1, oldest * 1000 + window - now)
end
local function window_wait()
  local wait = 0
  local rpm = tonumber(ARGV[6])
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - window)
    local started = redis.call('ZCARD', KEYS[5])
    if started >= rpm then
      local nth = redis.call('ZRANGE', KEYS[5], started - rpm, started - rpm, 'WITHSCORES')
      wait = math.max(1, tonumber(nth[2]) + window - now)
    end
  end
  wait = math.max(wait, tokens_wait(KEYS[6], tonumber(ARGV[7])), tokens_wait(KEYS[7], tonumber(ARGV[8])))
  return wait
end
local function count_start(member)
  if tonumber(ARGV[6]) > 0 then
    redis.call('ZADD', KEYS[5], now, member .. '@' .. now)
    redis.call('PEXPIRE', KEYS[5], window * 2)
  end
end
"""

# ARGV: member, max holders, lease ms, stale ms, then _WINDOWS's. Returns 1 (the slot is the member's), 0 (wait for a
# grant or the next poll) or minus the ms left of a pause.
ACQUIRE = _HOUSEKEEPING + _WINDOWS + """
local member, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function grant()
  redis.call('ZADD', KEYS[1], now + lease, member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  return 1
end
if redis.call('ZSCORE', KEYS[1], member) then return grant() end
local paused = math.max(redis.call('PTTL', KEYS[4]), window_wait())
local rank = redis.call('ZRANK', KEYS[2], member)
if paused <= 0 then
  local ahead = rank or redis.call('ZCARD', KEYS[2])
  if ahead < limit - redis.call('ZCARD', KEYS[1]) then
    count_start(member)
    return grant()
  end
end
if not rank then redis.call('ZADD', KEYS[2], now, member) end
redis.call('ZADD', KEYS[3], now, member)
if paused > 0 then return -paused end
return 0
"""

# ARGV: as ACQUIRE's, then the channel (ARGV[9]). Frees the member's slot and hands every free slot to
# the longest waiting callers the limits allow, telling their workers on the channel. Returns how many.
RELEASE = _HOUSEKEEPING + _WINDOWS + """
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('PTTL', KEYS[4]) > 0 then return 0 end
local granted = 0
while redis.call('ZCARD', KEYS[1]) < limit and window_wait() <= 0 do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not first then break end
  redis.call('ZREM', KEYS[2], first)
  redis.call('ZREM', KEYS[3], first)
  redis.call('ZADD', KEYS[1], now + lease, first)
  count_start(first)
  redis.call('PUBLISH', ARGV[9], first)
  granted = granted + 1
end
return granted
"""

# KEYS[1], KEYS[2] the token hashes; ARGV: the window (ms), input tokens, output tokens of one call.
TOKENS = """
local t = redis.call('TIME')
local second = t[1]
for i = 1, 2 do
  local count = tonumber(ARGV[i + 1])
  if count > 0 then
    redis.call('HINCRBY', KEYS[i], second, count)
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[1]) * 2)
  end
end
return 0
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
