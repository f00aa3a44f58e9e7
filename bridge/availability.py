"""Decide, for every agent, whether it is ``available`` (PROTOCOL.md §4), and publish it when it changes.

An agent is available when its input subscription is confirmed and at least one live worker has
verified its LLM and tools. The bridge reports all of this to Redis for the web app.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import redis

from agent2389.addresses import broker_address
from agent2389.state.keys import Keys
from agent2389.state.presence import BridgeState, Presence, write_bridge_state
from bridge.agent_link import AgentLink

log = logging.getLogger("agent2389.bridge.availability")


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
                 presence: Presence, interval_s: float = 1.0, redis_name: str = "Redis") -> None:
        self._links = links
        self._changes = changes
        self._redis_name = redis_name
        self._redis_failing = False
        self._redis = client
        self._keys = keys
        self._presence = presence
        self._interval_s = interval_s
        self._published: dict[str, tuple[str, int]] = {}
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
        now = time.time()
        for link in self._links:
            agent_id = link.agent.id
            serving = [w for w in workers if w.serves(agent_id)]
            status, reason = self._decide(link, len(serving), [w.not_ready.get(agent_id, "") for w in workers
                                                               if agent_id in w.not_ready])
            previous = self._reasons.get(agent_id, {})
            since = previous.get("since", now) if previous.get("status") == status else now
            self._reasons[agent_id] = {"status": status, "reason": reason, "since": since, "workers": len(serving)}
            current = self._published.get(agent_id)
            if link.connected and current != (status, len(serving)):
                link.publish_status(status, len(serving))
                self._published[agent_id] = (status, len(serving))
                if current is None or current[0] != status:
                    log.info("agent %s is %s: %s", agent_id, status, reason)
        self._report()

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
