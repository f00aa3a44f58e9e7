"""The shared memory of tasks seen (PROTOCOL.md §5 step 6), kept in Redis for every bridge and worker.

One key per delivery fingerprint (task id + remaining pipeline) holds the task's state:

- ``claiming``: a bridge is enqueueing it (expires in 10 s if that bridge dies); another delivery
  waits until the claim is confirmed or expires, so a crash between claim and enqueue loses nothing.
- ``queued``: the bridge enqueued it; another delivery of the same envelope is a duplicate.
- an attempt count: each time a worker starts on it; a redelivery after a worker died runs it again.
- ``done``: its answer was published; any later delivery is a duplicate.
- ``failed``: its error was published; the protocol lets the sender retry by publishing it again.

Keys expire (24 h by default), which bounds the memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from agent2389.state.keys import Keys

CLAIMING, QUEUED, DONE, FAILED = "claiming", "queued", "done", "failed"
NEW, PENDING, DUPLICATE = "new", "pending", "duplicate"
# An enqueue takes milliseconds; a claim outlives it only when its bridge died. The bridge that takes
# over waits for that claim with the agent's intake held up, so it must expire soon.
CLAIM_TTL_S = 10

# Claims in order. The caller may enqueue ("new") when the fingerprint is unknown or its last visit
# failed. Stops at the first "pending", so nothing after a delivery that must wait is claimed (the caller
# keeps the order of an agent's tasks).
_CLAIM_MANY = """
local results = {}
for i, key in ipairs(KEYS) do
  local state = redis.call('HGET', key, 'state')
  if state == 'claiming' then
    results[i] = 'pending'
    return results
  end
  if state and state ~= 'failed' then
    results[i] = 'duplicate'
  else
    redis.call('DEL', key)
    redis.call('HSET', key, 'state', 'claiming', 'attempts', 0)
    redis.call('EXPIRE', key, ARGV[1])
    results[i] = 'new'
  end
end
return results
"""

# Only a claim still in progress becomes "queued": a worker may already have finished the task.
_CONFIRM_MANY = """
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'state') == 'claiming' then
    redis.call('HSET', key, 'state', 'queued')
  end
  redis.call('EXPIRE', key, ARGV[1])
end
return 0
"""

# One script rather than a MULTI of four commands: the same atomic step, a third of the client CPU.
_BEGIN = """
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local state = redis.call('HGET', KEYS[1], 'state')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {attempts, state, redis.call('GET', KEYS[2])}
"""

_FINISH = """
redis.call('HSET', KEYS[1], 'state', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 0
"""

_UNCLAIM = """
if redis.call('HGET', KEYS[1], 'state') == 'claiming' then redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Visit:
    """What a worker learns when it starts on a delivery."""

    state: str | None
    attempts: int
    outcome: str | None

    @property
    def finished(self) -> bool:
        return self.state == DONE


class TaskLedger:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int = 24 * 3600) -> None:
        self._redis = client
        self._keys = keys
        self._ttl_s = ttl_s
        self._unclaim = client.register_script(_UNCLAIM)
        self._claim_many = client.register_script(_CLAIM_MANY)
        self._confirm_many = client.register_script(_CONFIRM_MANY)
        self._begin = client.register_script(_BEGIN)
        self._finish = client.register_script(_FINISH)

    def claim(self, fingerprint: str) -> str:
        """``new`` (enqueue it, then ``confirm``), ``duplicate`` (drop it) or ``pending`` (ask again later)."""
        [result] = self.claim_many([fingerprint])
        return result

    def confirm(self, fingerprint: str) -> None:
        """The claimed delivery is on its queue: remember it for the full time-to-live."""
        self.confirm_many([fingerprint])

    def claim_many(self, fingerprints: list[str]) -> list[str]:
        """``claim`` for each, in order, in one round trip; the list ends early, with ``pending``, at the
        first delivery that must wait (the ones after it are not claimed)."""
        if not fingerprints:
            return []
        results = self._claim_many(keys=[self._keys.ledger(f) for f in fingerprints], args=[CLAIM_TTL_S])
        return [r.decode() if isinstance(r, bytes) else str(r) for r in results]

    def confirm_many(self, fingerprints: list[str]) -> None:
        """``confirm`` for each, in one round trip."""
        if fingerprints:
            self._confirm_many(keys=[self._keys.ledger(f) for f in fingerprints], args=[self._ttl_s])

    def unclaim(self, fingerprint: str) -> None:
        """Forget a claim whose enqueue failed, so the redelivered message is not taken for a duplicate."""
        self._unclaim(keys=[self._keys.ledger(fingerprint)])

    def begin(self, fingerprint: str) -> Visit:
        """Record one more attempt and return what earlier attempts left behind."""
        keys = [self._keys.ledger(fingerprint), self._keys.outbox(fingerprint)]
        attempts, state, outcome = self._begin(keys=keys, args=[self._ttl_s])
        return Visit(_text(state), int(attempts), _text(outcome))

    def keep_outcome(self, fingerprint: str, outcome: str) -> None:
        """Remember the answer before publishing it, so a retry publishes it instead of redoing the work."""
        self._redis.set(self._keys.outbox(fingerprint), outcome, ex=self._ttl_s)

    def finish(self, fingerprint: str, failed: bool) -> None:
        keys = [self._keys.ledger(fingerprint), self._keys.outbox(fingerprint)]
        self._finish(keys=keys, args=[FAILED if failed else DONE, self._ttl_s])

    def state(self, fingerprint: str) -> str | None:
        return _text(self._redis.hget(self._keys.ledger(fingerprint), "state"))


def _text(value: object) -> str | None:
    # A script's nil comes back as None, or as False on a RESP3 connection.
    if value is None or value is False:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
