"""One agent's MQTT connection: its Last Will, its input subscription, its status and its error replies.

Each agent gets a connection of its own because MQTT allows one Last Will per connection, and the
protocol wants a retained ``unavailable`` for every agent whose bridge dies (PROTOCOL.md §4).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent2389.addresses import broker_address
from agent2389.config.agent import AgentConfig
from agent2389.mqtt import connect_options, make_client
from agent2389.protocol.envelope import AgentStatus, TaskError
from agent2389.protocol.topics import input_topic, status_topic

log = logging.getLogger("agent2389.bridge.mqtt")


class TaskSink(Protocol):
    """Where received task messages go (the agent's dispatcher inbox); called on paho's network thread."""

    def put(self, message: paho.MQTTMessage) -> None: ...


class ConnectionWatcher(Protocol):
    """Told when an agent's connection or subscription changed (the availability monitor); on paho's thread."""

    def connection_changed(self, agent_id: str) -> None: ...


class AgentLink:
    def __init__(self, agent: AgentConfig, client_id: str, tasks: TaskSink, watcher: ConnectionWatcher) -> None:
        self.agent = agent
        self.client_id = client_id
        self._tasks = tasks
        self._watcher = watcher
        self.connected = False
        self.subscribed = False
        self.connection_attempts = 0
        self.connections_established = 0
        self.connection_failures = 0
        self.messages_received = 0
        self.connected_since: float | None = None
        self._stopping = False
        self.client = make_client(agent.mqtt, client_id, persistent=True, manual_ack=True)
        self.client.will_set(status_topic(agent.id), self.status_payload("unavailable", 0), qos=1, retain=True)
        self.client.on_connect = self._connected
        self.client.on_connect_fail = self._connect_failed
        self.client.on_disconnect = self._disconnected
        self.client.on_subscribe = self._subscribed
        self.client.on_message = self._received

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting with backoff, forever."""
        if self.agent.mqtt.protocol != "5":
            log.warning("MQTT %s cannot keep the retain flag of a task queued while the bridge was away "
                        "(MQTT 5's Retain As Published): such a retained task is processed after a restart "
                        "(docs/protocol.md)", self.agent.mqtt.protocol)
        self.connection_attempts += 1
        self.client.connect_async(**connect_options(self.agent.mqtt, persistent=True))
        self.client.loop_start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish retained ``unavailable``, then disconnect cleanly (no Last Will)."""
        self._stopping = True
        if self.connected:
            info = self.publish_status("unavailable", 0)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                log.warning("could not publish unavailable for %s before stopping", self.agent.id)
        self.client.disconnect()
        self.client.loop_stop()

    def publish_status(self, status: str, workers: int, load: float = 0.0,
                       expiry_s: int | None = None) -> paho.MQTTMessageInfo:
        """Publish the retained status; with ``expiry_s`` (MQTT 5 only) the broker drops it after that long."""
        properties = None
        if expiry_s is not None and self.agent.mqtt.protocol == "5":
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = expiry_s
        return self.client.publish(status_topic(self.agent.id), self.status_payload(status, workers, load), qos=1,
                                   retain=True, properties=properties)

    def publish_error(self, topic: str, error: TaskError) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, error.model_dump_json(), qos=1)

    def ack(self, message: paho.MQTTMessage) -> None:
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)

    def status_payload(self, status: str, workers: int, load: float = 0.0) -> str:
        """The status as :meth:`publish_status` sends it (the bridge records it in the registry first)."""
        body = AgentStatus.model_validate({
            "agent_id": self.agent.id, "status": status, "description": self.agent.agent.description,
            "capabilities": self.agent.agent.capabilities, "workers": workers, "load": load,
        })
        return body.model_dump_json()

    def _connected(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            self.connection_failures += 1
            log.warning("MQTT connection for %s refused: %s", self.agent.id, reason)
            return
        self.connected, self.subscribed = True, False
        self.connections_established += 1
        self.connected_since = time.time()
        # Subscribing here, not once at start, restores the subscription after every reconnect.
        if self.agent.mqtt.protocol == "5":
            # Without Retain As Published the broker clears the retain flag of a retained task it queued
            # in our persistent session while the bridge was away, and that stale task would be processed.
            client.subscribe(input_topic(self.agent.id), options=SubscribeOptions(qos=1, retainAsPublished=True))
        else:
            client.subscribe(input_topic(self.agent.id), qos=1)
        log.info("MQTT connected for %s (session present: %s)", self.agent.id, flags.session_present)
        self._watcher.connection_changed(self.agent.id)

    def _connect_failed(self, client: paho.Client, userdata: Any) -> None:
        self.connection_attempts += 1
        self.connection_failures += 1
        log.warning("cannot reach the MQTT broker at %s for %s; retrying with backoff",
                    broker_address(self.agent.mqtt), self.agent.id)

    def _disconnected(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        was_connected = self.connected
        self.connected, self.subscribed, self.connected_since = False, False, None
        if was_connected and not self._stopping:
            self.connection_attempts += 1
            log.warning("MQTT connection for %s lost (%s); reconnecting", self.agent.id, reason)
        self._watcher.connection_changed(self.agent.id)

    def _subscribed(self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                    props: Any) -> None:
        granted = all(not r.is_failure for r in reasons)
        self.subscribed = granted
        if granted:
            log.info("subscribed to %s", input_topic(self.agent.id))
        else:
            log.error("broker refused the subscription to %s: %s", input_topic(self.agent.id), reasons)
        self._watcher.connection_changed(self.agent.id)

    def _received(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # Runs on paho's network thread: hand off and return; never block or raise here.
        self.messages_received += 1
        try:
            self._tasks.put(message)
        except Exception:
            log.exception("could not hand off a message for %s", self.agent.id)

