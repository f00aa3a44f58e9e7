"""Clear the retained ``unavailable`` statuses a test run leaves on the shared broker.

A stopped agent's ``unavailable`` stays retained, as PROTOCOL.md §4 wants, and tests name their agents
uniquely, so every run used to leave ~160 of them behind. Every status watcher subscribes to all of them
at once, and a broker with the default ``max_queued_messages`` (1000) drops what is beyond that on a QoS 1
subscription: after a few runs on one machine, discovery tests lost the very status they had published.
The run notes which statuses were retained when it started and clears, when it ends, the ``unavailable``
ones that were not; an available status of a concurrent run is left alone.
"""

from __future__ import annotations

import json
import threading
import uuid

import paho.mqtt.client as paho

from agent2389.config.agent import MqttSection
from agent2389.mqtt import connect_options, make_client

STATUS_FILTER = "/control/agents/+/status"
WAIT_S = 30


def retained_statuses(mqtt_url: str) -> dict[str, bytes] | None:
    """Every retained status on the broker by topic; None when the broker cannot be reached."""
    try:
        client = _connected(mqtt_url)
    except OSError:
        return None
    marker = f"test-leftovers/{uuid.uuid4().hex}"
    statuses: dict[str, bytes] = {}
    done = threading.Event()

    def received(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        if message.topic == marker:
            done.set()
        elif message.retain and message.payload:
            statuses[message.topic] = bytes(message.payload)

    def subscribed(client: paho.Client, *args: object) -> None:
        # The broker sends a subscription's retained messages before anything published after its SUBACK.
        client.publish(marker, b"end", qos=0)

    # Set before the loop starts, so before the CONNACK is read. QoS 0: the broker sends every retained
    # message, not only as many as its queue for one client holds.
    client.on_message = received
    client.on_subscribe = subscribed
    client.on_connect = lambda client, *args: client.subscribe([(STATUS_FILTER, 0), (marker, 0)])
    client.loop_start()
    try:
        return statuses if done.wait(WAIT_S) else None
    finally:
        client.disconnect()
        client.loop_stop()


def clear_new_unavailable(mqtt_url: str, before: dict[str, bytes], containing: str = "") -> int:
    """Clear the retained ``unavailable`` statuses that were not on the broker in ``before`` (and whose topic
    holds ``containing``); how many."""
    now = retained_statuses(mqtt_url)
    if now is None:
        return 0
    leftovers = [topic for topic, payload in now.items()
                 if topic not in before and containing in topic and _unavailable(payload)]
    if not leftovers:
        return 0
    client = _connected(mqtt_url)
    client.loop_start()
    try:
        sent = [client.publish(topic, b"", qos=1, retain=True) for topic in leftovers]
        for info in sent:
            info.wait_for_publish(WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(leftovers)


def _connected(mqtt_url: str) -> paho.Client:
    """A client built as agent2389 builds them, its CONNECT sent (raises OSError when nothing listens)."""
    mqtt = MqttSection(broker_url=mqtt_url)
    client = make_client(mqtt, f"leftovers-{uuid.uuid4().hex[:8]}")
    client.connect(**connect_options(mqtt, persistent=False))
    return client


def _unavailable(payload: bytes) -> bool:
    try:
        return bool(json.loads(payload).get("status") == "unavailable")
    except (ValueError, AttributeError):
        return False
