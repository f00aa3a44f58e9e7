"""The shipped Mosquitto configurations, run by a real mosquitto with only ports and paths changed."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent2389.config import MqttSection
from agent2389.embedded import answers
from agent2389.mqtt import connect_options, make_client
from tests.deploy.conftest import repo_path, require_tool
from tests.services import free_port


def local_copy(conf: str, tmp_path: Path, ports: dict[int, int], certs: Path | None = None) -> Path:
    """The config with its listeners on free local ports and its files under tmp_path."""
    text = repo_path(f"config/mosquitto/{conf}").read_text(encoding="utf-8")
    for container_port, port in ports.items():
        text = re.sub(rf"^listener {container_port}\b.*$", f"listener {port} 127.0.0.1", text, flags=re.MULTILINE)
    text = text.replace("/mosquitto/data/", f"{tmp_path}/data/")
    if certs is not None:
        text = text.replace("/mosquitto/certs/", f"{certs}/")
    if os.geteuid() == 0:
        # As root, mosquitto drops to the `mosquitto` user before reading certificates, which cannot
        # enter pytest's private temporary folders; in the container the files are mounted readable.
        text += "\nuser root\n"
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / Path(conf).name
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def running_broker(config: Path, port: int, tmp_path: Path) -> Iterator[None]:
    mosquitto = require_tool("mosquitto", "the broker's configuration is checked by running it")
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as output:
        process = subprocess.Popen([mosquitto, "-c", str(config)], stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not answers("127.0.0.1", port) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None and answers("127.0.0.1", port), log.read_text()
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def connects(mqtt: MqttSection) -> bool:
    """Whether a client built the way agent2389 builds them gets a CONNACK from the broker."""
    client = make_client(mqtt, f"deploy-test-{free_port()}")
    try:
        client.connect(**connect_options(mqtt, persistent=False))
        deadline = time.monotonic() + 5
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        return client.is_connected()
    except OSError:  # ssl.SSLCertVerificationError included
        return False
    finally:
        client.disconnect()
        if client.socket() is not None:
            client.socket().close()


def generate_certs(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    require_tool("openssl", "scripts/generate-certs.sh makes certificates with openssl")
    return subprocess.run(["bash", str(repo_path("scripts/generate-certs.sh")), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_broker_config_runs_and_keeps_tcp_nodelay(tmp_path: Path) -> None:
    assert re.search(r"^set_tcp_nodelay true$", repo_path("config/mosquitto/mosquitto.conf").read_text(), re.M)
    port = free_port()
    with running_broker(local_copy("mosquitto.conf", tmp_path, {1883: port}), port, tmp_path):
        assert connects(MqttSection(broker_url=f"mqtt://127.0.0.1:{port}"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    result = generate_certs(out)
    assert result.returncode == 0, result.stderr
    return out


def test_the_tls_broker_accepts_clients_that_trust_our_ca_and_check_its_name(certs: Path, tmp_path: Path) -> None:
    tls_port, plain_port = free_port(), free_port()
    config = local_copy("tls/mosquitto.conf", tmp_path, {8883: tls_port, 1883: plain_port}, certs)
    with running_broker(config, tls_port, tmp_path):
        assert connects(MqttSection(broker_url=f"mqtts://localhost:{tls_port}", ca_file=str(certs / "ca.crt")))
        assert connects(MqttSection(broker_url=f"mqtt://127.0.0.1:{plain_port}"))


def test_the_tls_broker_is_refused_by_clients_that_trust_another_ca(certs: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert generate_certs(other).returncode == 0
    tls_port, plain_port = free_port(), free_port()
    config = local_copy("tls/mosquitto.conf", tmp_path, {8883: tls_port, 1883: plain_port}, certs)
    with running_broker(config, tls_port, tmp_path):
        # The same context agent2389.mqtt builds; checked without paho, which leaves the socket of a
        # failed handshake to the garbage collector (a ResourceWarning, an error under pytest).
        context = ssl.create_default_context(cafile=str(other / "ca.crt"))
        with socket.create_connection(("localhost", tls_port), timeout=5) as raw, pytest.raises(ssl.SSLError) as error:
            context.wrap_socket(raw, server_hostname="localhost").close()
        assert "certificate verify failed" in str(error.value)


def test_the_broker_certificate_names_the_service_and_local_addresses(certs: Path) -> None:
    show = ["openssl", "x509", "-in", str(certs / "mqtt-broker.crt"), "-noout", "-ext", "subjectAltName"]
    text = subprocess.run(show, capture_output=True, text=True, timeout=10).stdout
    assert "DNS:mqtt-broker" in text and "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    assert (certs / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (certs / "mqtt-broker.key").stat().st_mode & 0o777 == 0o600
    assert (certs / ".gitignore").read_text().splitlines()[-1] == "*"


def test_rerunning_rotates_the_broker_certificate_and_keeps_the_ca(tmp_path: Path) -> None:
    assert generate_certs(tmp_path, "--host", "mqtt.example.com").returncode == 0
    ca, broker = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "mqtt-broker.crt").read_bytes()
    result = generate_certs(tmp_path)
    assert result.returncode == 0 and "keeping the CA" in result.stdout
    assert (tmp_path / "ca.crt").read_bytes() == ca and (tmp_path / "mqtt-broker.crt").read_bytes() != broker
    assert generate_certs(tmp_path, "--new-ca").returncode == 0
    assert (tmp_path / "ca.crt").read_bytes() != ca
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".generate")] == []


def test_bad_arguments_are_refused_with_a_reason(tmp_path: Path) -> None:
    result = generate_certs(tmp_path, "--days", "soon")
    assert result.returncode == 2 and "not a number of days: soon" in result.stderr
    result = generate_certs(tmp_path, "--bogus")
    assert result.returncode == 2 and "unknown option --bogus" in result.stderr
