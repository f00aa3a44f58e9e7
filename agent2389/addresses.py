"""Service addresses as operators read them: a URL with no password in it, a broker's ``mqtt://host:port``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from agent2389.config.agent import MqttSection


def redacted(url: str) -> str:
    """``url`` without its user information (``redis://:secret@host`` becomes ``redis://host``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def broker_address(mqtt: MqttSection) -> str:
    host = f"[{mqtt.host}]" if ":" in mqtt.host else mqtt.host
    return f"{'mqtts' if mqtt.tls else 'mqtt'}://{host}:{mqtt.port}"
