"""Decide, for every agent, whether it is ``available`` (PROTOCOL.md §4), and publish it when it changes.

An agent is available when its input subscription is confirmed and at least one live worker has
verified its LLM and tools. Its status also carries its workers and load (§8), and is published again
when those change (load by 0.1 or more) and at least every heartbeat, with an expiry of three heartbeats.
The bridge reports all of this to Redis for the web app, and records each status in the agent registry
before it publishes it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from agent2389.addresses import broker_address
from agent2389.protocol.topics import status_topic
from agent2389.state.keys import Keys
from agent2389.state.load import load, tasks_in_progress
from agent2389.state.presence import BridgeState, Presence, write_bridge_state
from agent2389.state.registry import AgentRegistry
from bridge.agent_link import AgentLink

log = logging.getLogger("agent2389.bridge.availability")
LOAD_STEP = 0.1
# Three heartbeats without a new status and the broker drops the last one (PROTOCOL.md §8).
EXPIRY_HEARTBEATS = 3


@dataclass(frozen=True)
class Published:
    """What was last published for one agent, and when (``time.monotonic``)."""

    status: str
    workers: int
    load: float
    at: float

    def outdated(self, status: str, workers: int, load: float, now: float, heartbeat_s: float) -> bool:
        # The epsilon: 0.15 - 0.05 is 0.0999... in floating point, and that is a move of 0.1.
        return ((status, workers) != (self.status, self.workers) or abs(load - self.load) >= LOAD_STEP - 1e-9
                or now - self.at >= heartbeat_s)


class ConnectionChanges:
    """The agents whose MQTT connection changed, from paho's threads to the monitor, which wakes at once.

    After a reconnect the protocol wants ``available`` sent again: the monitor forgets what it published
    for each agent taken from here.
    """

    def __init__(self) -> None:
        self._changed: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def connection_changed(self, agent_id: str) -> None:
        with self._lock:
            self._changed.add(agent_id)
        self._wake.set()

    def take(self) -> set[str]:
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed

    def wait(self, timeout_s: float) -> bool:
        """Until a change (or :meth:`wake`), at most ``timeout_s``; False when none came."""
        woken = self._wake.wait(timeout_s)
        self._wake.clear()
        return woken

    def wake(self) -> None:
        self._wake.set()


class AvailabilityMonitor:
    def __init__(self, links: list[AgentLink], changes: ConnectionChanges, client: redis.Redis, keys: Keys,
                 presence: Presence, interval_s: float = 1.0, redis_name: str = "Redis",
                 heartbeat_s: float = 30.0, recorded: set[str] | None = None) -> None:
        self._links = links
        self._changes = changes
        # Our agents whose status this bridge recorded itself (shared with its StatusWatcher).
        self._recorded = set() if recorded is None else recorded
        self._heartbeat_s = heartbeat_s
        self._registry = AgentRegistry(client, keys)
        self._claimed_at = -heartbeat_s
        self._redis_name = redis_name
        self._redis_failing = False
        self._redis = client
        self._keys = keys
        self._presence = presence
        self._interval_s = interval_s
        self._published: dict[str, Published] = {}
        self._reasons: dict[str, dict[str, Any]] = {}
        self._stopping = threading.Event()
        self._state = BridgeState(bridge_id=f"{socket.gethostname()}:{os.getpid()}")
        self._thread = threading.Thread(target=self._loop, name="availability", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._changes.wake()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check()
                if self._redis_failing:
                    log.info("%s answers again", self._redis_name)
                self._redis_failing = False
            except redis.RedisError as exc:
                # Once per outage, naming where Redis was looked for; the retries go on every interval.
                level = logging.DEBUG if self._redis_failing else logging.WARNING
                log.log(level, "cannot reach %s (%s); agents' statuses unchanged, retrying", self._redis_name,
                        type(exc).__name__)
                self._redis_failing = True
            except Exception:
                log.exception("availability check failed")
            self._changes.wait(self._interval_s)

    def check(self) -> None:
        for agent_id in self._changes.take():
            self._published.pop(agent_id, None)
        workers = self._presence.workers()
        running = tasks_in_progress(self._redis, self._keys, workers)
        now, clock = time.time(), time.monotonic()
        self._claim(clock)
        for link in self._links:
            agent_id = link.agent.id
            serving = [w for w in workers if w.serves(agent_id)]
            status, reason = self._decide(link, len(serving), [w.not_ready.get(agent_id, "") for w in workers
                                                               if agent_id in w.not_ready])
            busy = load(running.get(agent_id, 0), sum(w.concurrency for w in serving))
            previous = self._reasons.get(agent_id, {})
            since = previous.get("since", now) if previous.get("status") == status else now
            self._reasons[agent_id] = {"status": status, "reason": reason, "since": since, "workers": len(serving),
                                       "load": busy}
            current = self._published.get(agent_id)
            if link.connected and (current is None or current.outdated(status, len(serving), busy, clock,
                                                                       self._heartbeat_s)):
                expiry = round(EXPIRY_HEARTBEATS * self._heartbeat_s) if status == "available" else None
                self._record(link, status, len(serving), busy, expiry)
                link.publish_status(status, len(serving), busy, expiry)
                self._published[agent_id] = Published(status, len(serving), busy, clock)
                if current is None or current.status != status:
                    log.info("agent %s is %s: %s", agent_id, status, reason)
        self._report()

    def _record(self, link: AgentLink, status: str, workers: int, busy: float, expiry: int | None) -> None:
        """Record our agent's status in the registry before publishing it: whoever sees it announced (a
        peer, ``/ready``, ``agent2389 up``) may route to it at once, and every process routes by the
        registry, which the status watcher would only update a moment after the broker delivers it."""
        payload = link.status_payload(status, workers, busy).encode()
        self._registry.observe(status_topic(link.agent.id), payload, fallback_expiry_s=expiry)
        self._recorded.add(link.agent.id)

    def _claim(self, clock: float) -> None:
        """Tell the registry, now and then, which agents are this deployment's own."""
        if clock - self._claimed_at >= self._heartbeat_s:
            self._registry.claim([link.agent.id for link in self._links])
            self._claimed_at = clock

    def _decide(self, link: AgentLink, serving: int, not_ready: list[str]) -> tuple[str, str]:
        if not link.connected:
            return "unavailable", "not connected to the MQTT broker"
        if not link.subscribed:
            return "unavailable", "input subscription not yet confirmed"
        if serving == 0:
            why = f" ({not_ready[0]})" if not_ready else ""
            return "unavailable", f"no live worker serves this agent{why}"
        return "available", f"{serving} live worker(s)"

    def _report(self) -> None:
        state = self._state
        state.connected = all(link.connected for link in self._links)
        state.subscribed = all(link.subscribed for link in self._links)
        state.connection_attempts = sum(link.connection_attempts for link in self._links)
        state.connections_established = sum(link.connections_established for link in self._links)
        state.connection_failures = sum(link.connection_failures for link in self._links)
        state.messages_received = sum(link.messages_received for link in self._links)
        since = [link.connected_since for link in self._links if link.connected_since is not None]
        state.connected_since = min(since) if state.connected and since else None
        state.agents = dict(self._reasons)
        state.broker = ", ".join(sorted({broker_address(link.agent.mqtt) for link in self._links}))
        write_bridge_state(self._redis, self._keys, state, ttl_s=max(10.0, self._interval_s * 5))
