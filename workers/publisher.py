"""The worker process's MQTT connection, used only to publish answers, errors and forwarded tasks.

``publish`` returns only once the broker acknowledged the message (QoS 1 PUBACK), so the Celery message
is acknowledged after the answer is safe. While the broker is unreachable it waits: paho resends the
message after reconnecting, and the task keeps its lease meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from agent2389.config.agent import MqttSection
from agent2389.mqtt import connect_options, make_client, wait_for_puback
from agent2389.protocol.errors import ServiceUnavailableError

log = logging.getLogger("agent2389.workers.mqtt")


class Publisher:
    def __init__(self, mqtt: MqttSection, stopping: threading.Event | None = None) -> None:
        client_id = f"agent2389-worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._mqtt = mqtt
        self._stopping = stopping or threading.Event()
        self.connected = threading.Event()
        self.client = make_client(mqtt, client_id, persistent=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def start(self) -> None:
        self.client.connect_async(**connect_options(self._mqtt, persistent=False))
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: str, retain: bool = False, wait_s: float | None = None) -> None:
        """Publish at QoS 1 and wait for the PUBACK (forever unless ``wait_s``, or until stopping)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        waited = 0.0
        while not wait_for_puback(info, 1.0):
            waited += 1.0
            if self._stopping.is_set() or (wait_s is not None and waited >= wait_s):
                raise ServiceUnavailableError("the MQTT broker did not acknowledge the message")
            if waited % 10 == 0:
                log.warning("still waiting for the MQTT broker to acknowledge a message to %s", topic)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        self.connected.set()
        log.info("MQTT publisher connected")

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       props: Any) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("MQTT publisher disconnected (%s); reconnecting", reason)
