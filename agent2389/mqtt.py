"""One way to build an MQTT client for every process: protocol version, TLS, credentials, TCP_NODELAY."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent2389.config.agent import MqttSection

# Sessions of the bridge survive a day of downtime; QoS 1 tasks sent meanwhile wait in the broker.
SESSION_EXPIRY_S = 24 * 3600
RECEIVE_MAXIMUM = 1000


def make_client(
    mqtt: MqttSection,
    client_id: str,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    environ: Mapping[str, str] | None = None,
) -> paho.Client:
    env = os.environ if environ is None else environ
    v5 = mqtt.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if mqtt.username_env:
        password = env.get(mqtt.password_env) if mqtt.password_env else None
        client.username_pw_set(env.get(mqtt.username_env, ""), password)
    if mqtt.tls:
        context = ssl.create_default_context(cafile=mqtt.ca_file)
        client.tls_set_context(context)
    client.on_socket_open = _no_delay
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.max_inflight_messages_set(RECEIVE_MAXIMUM)
    client.max_queued_messages_set(0)
    return client


def connect_options(mqtt: MqttSection, *, persistent: bool) -> dict[str, Any]:
    """Keyword arguments for ``connect``/``connect_async`` that give the session we want."""
    options: dict[str, Any] = {"host": mqtt.host, "port": mqtt.port, "keepalive": mqtt.keepalive_s}
    if mqtt.protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        if persistent:
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        options["clean_start"] = not persistent
        options["properties"] = properties
    return options


def _no_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    # Nagle's algorithm holds small packets back ~40 ms; every MQTT message here is small.
    if isinstance(sock, socket.socket) or hasattr(sock, "setsockopt"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def wait_for_puback(info: paho.MQTTMessageInfo, timeout_s: float) -> bool:
    """True once the broker acknowledged the message, False when ``timeout_s`` passed first.

    A QoS 1 message published while the client was disconnected is kept by paho and sent after the
    reconnect, but its ``rc`` still says "no connection": clear that so we can wait for the PUBACK.
    """
    if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
        info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
    try:
        info.wait_for_publish(timeout_s)
        return info.is_published()
    except (RuntimeError, ValueError):
        return False
