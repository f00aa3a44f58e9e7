"""The agent registry (PROTOCOL.md §8): every agent seen on the broker, ours and foreign, shared in Redis.

The bridge feeds it from ``/control/agents/+/status`` (``observe``); workers, the web app and the CLI
read it (``agents``, ``routable``). An agent is routable while its latest status is ``available`` and
has not expired. Records are JSON in one hash, so a read is one round trip whatever the fleet's size.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from agent2389.protocol.status import NotAStatusError, StatusFields, agent_id_from_status_topic, parse_status
from agent2389.state.keys import Keys

log = logging.getLogger("agent2389.registry")

# A broker anyone can publish to could otherwise grow the hash without bound, one made-up id at a time.
MAX_AGENTS = 10_000
# An agent stays "ours" this long after a bridge of this deployment last claimed it, so an agent removed
# from the configuration is eventually shown as what it then is: someone else's, if anyone's.
OWN_CLAIM_TTL_S = 24 * 3600


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    status: str                      # "available" | "unavailable"
    description: str                 # "" when absent
    capabilities: tuple[str, ...]    # () when absent
    load: float                      # 0.0 when absent
    workers: int | None
    last_seen: float                 # unix seconds, when its latest status arrived
    expires_at: float | None         # unix seconds; None = no expiry given
    foreign: bool                    # not one of this deployment's agents

    def routable(self, now: float) -> bool:
        return self.status == "available" and not self.expired(now)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def state(self, now: float) -> str:
        """``available``, ``unavailable`` or ``expired`` (said available, but stopped saying so)."""
        return "expired" if self.status == "available" and self.expired(now) else self.status

    def to_json(self, now: float) -> dict[str, Any]:
        """What the API and the CLI show: the record plus whether it is routable now."""
        body = asdict(self)
        body["capabilities"] = list(self.capabilities)
        body["routable"] = self.routable(now)
        body["state"] = self.state(now)
        return body


@dataclass(frozen=True)
class RegistrySummary:
    by_state: dict[str, int]       # available / unavailable / expired -> agents
    foreign: int
    ignored: int                   # payloads on status topics that were not statuses, ever


class AgentRegistry:
    def __init__(self, client: redis.Redis, keys: Keys, max_age_s: float = 0.0) -> None:
        """``max_age_s``: how long :meth:`routable` may answer from its last read. Workers route at every hop
        of every workflow, and reading and parsing a large registry costs far more than the decision."""
        self._redis = client
        self._keys = keys
        self._max_age_s = max_age_s
        # (monotonic time of the read, what it found); replaced whole, so threads never see half of it.
        self._routable: tuple[float, list[AgentRecord]] | None = None

    # -- reading ---------------------------------------------------------------------------------------

    def agents(self) -> list[AgentRecord]:
        """Every agent seen (and not cleared), sorted by id."""
        return self.read()[0]

    def read(self) -> tuple[list[AgentRecord], int]:
        """Every agent seen, sorted by id, and how many non-statuses were ignored: one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._keys.registry())
        pipe.zrangebyscore(self._keys.registry_own(), time.time() - OWN_CLAIM_TTL_S, "+inf")
        pipe.get(self._keys.registry_ignored())
        raw, own_ids, ignored = pipe.execute()
        own = {_text(agent_id) for agent_id in own_ids}
        records = [_record(_text(value), own) for value in raw.values()]
        return sorted((r for r in records if r is not None), key=lambda r: r.agent_id), int(ignored or 0)

    def routable(self) -> list[AgentRecord]:
        """The agents that may be routed to now, sorted by id (as of at most ``max_age_s`` ago)."""
        cached, clock = self._routable, time.monotonic()
        if cached is not None and clock - cached[0] < self._max_age_s:
            now = time.time()
            return [record for record in cached[1] if record.routable(now)]
        now = time.time()
        routable = [record for record in self.agents() if record.routable(now)]
        if self._max_age_s > 0:
            self._routable = (clock, routable)
        return routable

    def get(self, agent_id: str) -> AgentRecord | None:
        return next((r for r in self.agents() if r.agent_id == agent_id), None)

    def summary(self) -> RegistrySummary:
        return summarize(*self.read(), time.time())

    # -- writing (the bridge) ----------------------------------------------------------------------------

    def claim(self, agent_ids: list[str]) -> None:
        """Mark ``agent_ids`` as this deployment's own (called by every bridge, regularly)."""
        if agent_ids:
            now = time.time()
            self._redis.zadd(self._keys.registry_own(), {agent_id: now for agent_id in agent_ids})

    def observe(self, topic: str, payload: bytes, properties: Any = None, *,
                fallback_expiry_s: float | None = None) -> str:
        """Take in one message from ``/control/agents/+/status``; say what became of it.

        Returns ``stored``, ``removed`` (an empty payload: the retained status was cleared) or ``ignored``
        (counted). The expiry is the message's MQTT 5 expiry interval, which the broker counts down for a
        retained message, so it is measured from now; without one, ``fallback_expiry_s`` if given.
        """
        agent_id = agent_id_from_status_topic(topic)
        if agent_id is None:
            return self._ignore(topic, "not an agent status topic")
        if not payload:
            self._redis.hdel(self._keys.registry(), agent_id)
            return "removed"
        try:
            fields = parse_status(agent_id, payload)
        except NotAStatusError as why:
            return self._ignore(topic, str(why))
        now = time.time()
        expiry_s = _message_expiry(properties)
        if expiry_s is None:
            expiry_s = fallback_expiry_s
        if not self._room_for(agent_id):
            return self._ignore(topic, f"the registry already holds {MAX_AGENTS} agents")
        self._redis.hset(self._keys.registry(), agent_id, _dump(fields, now, expiry_s))
        return "stored"

    def _room_for(self, agent_id: str) -> bool:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hexists(self._keys.registry(), agent_id)
        pipe.hlen(self._keys.registry())
        known, size = pipe.execute()
        return bool(known) or int(size) < MAX_AGENTS

    def _ignore(self, topic: str, why: str) -> str:
        self._redis.incr(self._keys.registry_ignored())
        log.debug("ignored a payload on %r: %s", topic[:200], why)
        return "ignored"


def summarize(records: list[AgentRecord], ignored: int, now: float) -> RegistrySummary:
    by_state = {"available": 0, "unavailable": 0, "expired": 0}
    for record in records:
        by_state[record.state(now)] = by_state.get(record.state(now), 0) + 1
    return RegistrySummary(by_state, sum(1 for r in records if r.foreign), ignored)


def _message_expiry(properties: Any) -> float | None:
    value = getattr(properties, "MessageExpiryInterval", None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dump(fields: StatusFields, now: float, expiry_s: float | None) -> str:
    return json.dumps({
        "agent_id": fields.agent_id, "status": fields.status, "description": fields.description,
        "capabilities": list(fields.capabilities), "load": fields.load, "workers": fields.workers,
        "last_seen": now, "expires_at": None if expiry_s is None else now + expiry_s,
    })


def _record(raw: str, own: set[str]) -> AgentRecord | None:
    try:
        body = json.loads(raw)
        return AgentRecord(
            agent_id=str(body["agent_id"]), status=str(body["status"]), description=str(body["description"]),
            capabilities=tuple(str(c) for c in body["capabilities"]), load=float(body["load"]),
            workers=body["workers"], last_seen=float(body["last_seen"]),
            expires_at=None if body["expires_at"] is None else float(body["expires_at"]),
            foreign=str(body["agent_id"]) not in own,
        )
    except (ValueError, KeyError, TypeError):
        # Written by another version of agent2389 sharing the prefix: skip it rather than fail every reader.
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
