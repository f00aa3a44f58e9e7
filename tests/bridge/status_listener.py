"""A plain paho MQTT 5 client that records the statuses on the broker with their message expiry."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions


@dataclass(frozen=True)
class SeenStatus:
    body: dict[str, Any]
    retained: bool
    expiry_s: int | None


class StatusListener:
    def __init__(self, mqtt_url: str) -> None:
        parts = urlsplit(mqtt_url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"status-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv5)
        self.seen: queue.Queue[SeenStatus] = queue.Queue()
        self._subscribed = threading.Event()
        self.client.on_message = self._received
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()

    def listen(self, agent_id: str) -> None:
        # Retain As Published: a live delivery keeps its retain flag, so the test can see the status is retained.
        self.client.subscribe(f"/control/agents/{agent_id}/status",
                              options=SubscribeOptions(qos=1, retainAsPublished=True))
        assert self._subscribed.wait(5), "no SUBACK"

    def next(self, timeout_s: float = 15) -> SeenStatus:
        return self.seen.get(timeout=timeout_s)

    def publish(self, agent_id: str, payload: dict[str, Any] | bytes, expiry_s: int | None = None) -> None:
        """Publish a retained status as another implementation would (QoS 1, waits for the PUBACK)."""
        properties = None
        if expiry_s is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = expiry_s
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        info = self.client.publish(f"/control/agents/{agent_id}/status", body, qos=1, retain=True,
                                   properties=properties)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _received(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if not message.payload:
            return
        expiry = getattr(message.properties, "MessageExpiryInterval", None)
        self.seen.put(SeenStatus(json.loads(message.payload), bool(message.retain), expiry))
