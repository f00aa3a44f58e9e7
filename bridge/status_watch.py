"""Feed the agent registry (PROTOCOL.md §8) from every status on the broker: one subscription per bridge.

A connection of its own, with a clean session: each (re)subscription brings every retained status again,
which also refills the registry after Redis was away. Handling a message never raises on paho's thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as paho
import redis
from paho.mqtt.reasoncodes import ReasonCode

from agent2389.config.agent import MqttSection
from agent2389.mqtt import connect_options, make_client
from agent2389.protocol.envelope import AgentStatus
from agent2389.protocol.status import agent_id_from_status_topic
from agent2389.protocol.topics import status_topic
from agent2389.state.registry import AgentRegistry

log = logging.getLogger("agent2389.bridge.registry")
STATUS_FILTER = "/control/agents/+/status"
RETRY_S = 1.0
# Each topic that carried garbage is logged once (then only counted), so a noisy client cannot flood the log.
MAX_TOPICS_LOGGED = 1000


class StatusWatcher:
    def __init__(self, mqtt: MqttSection, client_id: str, registry: AgentRegistry, own: list[str],
                 own_expiry_s: float, recorded: set[str] | None = None) -> None:
        self._mqtt = mqtt
        self._registry = registry
        self._own = frozenset(own)
        # Our agents whose status the bridge recorded itself as it published it (bridge.availability).
        self._recorded = set() if recorded is None else recorded
        # Our own statuses carry an MQTT 5 expiry; on MQTT 3.1.1 the registry applies the same one itself.
        self._own_expiry_s = own_expiry_s
        self.redis_lost = threading.Event()
        self._stopping = threading.Event()
        self.subscribed = threading.Event()
        self._logged: set[str] = set()
        self.client = make_client(mqtt, client_id)
        self.client.on_connect = self._connected
        self.client.on_subscribe = self._subscribed
        self.client.on_message = self._received

    def start(self) -> None:
        self.client.connect_async(**connect_options(self._mqtt, persistent=False))
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect. Our agents' links have just published ``unavailable``: record that now, so no process
        routes to them meanwhile, rather than hoping their messages arrive before the disconnect."""
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
        try:
            for agent_id in sorted(self._own):
                stopped = AgentStatus(agent_id=agent_id, status="unavailable").model_dump_json().encode()
                self._registry.observe(status_topic(agent_id), stopped)
        except redis.RedisError as exc:
            log.warning("could not record our agents as unavailable in Redis (%s)", type(exc).__name__)

    def _connected(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connection of the registry feed refused: %s", reason)
            return
        client.subscribe(STATUS_FILTER, qos=1)

    def _subscribed(self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                    props: Any) -> None:
        if all(not r.is_failure for r in reasons):
            self.subscribed.set()
        else:
            log.error("broker refused the subscription to %s: %s", STATUS_FILTER, reasons)

    def _received(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        agent_id = agent_id_from_status_topic(message.topic)
        if message.retain and agent_id in self._recorded:
            # Stored before this subscription: at best a copy of the status our bridge recorded itself, at
            # worst the previous run's `unavailable`, which must not overwrite the `available` just recorded.
            return
        fallback = self._own_expiry_s if agent_id in self._own else None
        try:
            outcome = self._registry.observe(message.topic, bytes(message.payload),
                                             getattr(message, "properties", None), fallback_expiry_s=fallback)
        except redis.RedisError as exc:
            self._lost(exc)
            return
        except Exception:
            log.exception("could not record a status from %r", message.topic[:200])
            return
        if outcome == "ignored" and message.topic not in self._logged and len(self._logged) < MAX_TOPICS_LOGGED:
            self._logged.add(message.topic)
            log.warning("ignored a payload on %r that is not an agent status (counted; logged once per topic)",
                        message.topic[:200])

    def _lost(self, exc: redis.RedisError) -> None:
        # The status is gone for now; once Redis answers, subscribing again brings every retained one back.
        if not self.redis_lost.is_set():
            self.redis_lost.set()
            # Redis may come back empty: the resubscription's retained statuses, ours included, refill it.
            self._recorded.clear()
            log.warning("cannot record agent statuses in Redis (%s); will resubscribe when it answers",
                        type(exc).__name__)
            threading.Thread(target=self._resubscribe_when_back, name="registry-retry", daemon=True).start()

    def _resubscribe_when_back(self) -> None:
        while not self._stopping.wait(RETRY_S):
            try:
                self._registry.agents()
            except redis.RedisError:
                continue
            self.redis_lost.clear()
            self.client.subscribe(STATUS_FILTER, qos=1)
            log.info("Redis answers again; statuses are recorded again")
            return
