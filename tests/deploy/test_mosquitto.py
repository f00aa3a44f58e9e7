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

from agent2389.config.agent import MqttSection
from agent2389.config.files import inspect_config
from agent2389.ops.local_services import answers
from tests.deploy.conftest import connects, repo_path, require_tool
from tests.services import free_port

# Starts Mosquitto brokers of its own (TLS, passwords).
pytestmark = pytest.mark.server


def local_copy(conf: str, tmp_path: Path, ports: dict[int, int], certs: Path | None = None,
               passwords: Path | None = None) -> Path:
    """The config with its listeners on free local ports and its files under tmp_path."""
    text = repo_path(f"config/mosquitto/{conf}").read_text(encoding="utf-8")
    for container_port, port in ports.items():
        text = re.sub(rf"^listener {container_port}\b.*$", f"listener {port} 127.0.0.1", text, flags=re.MULTILINE)
    text = text.replace("/mosquitto/data/", f"{tmp_path}/data/")
    if certs is not None:
        text = text.replace("/mosquitto/certs/", f"{certs}/")
    if passwords is not None:
        text = text.replace("/mosquitto/config/passwd", f"{passwords}/passwd")
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


def generate_password(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(repo_path("scripts/generate-mqtt-password.sh")), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=60)


def login(out: Path) -> dict[str, str]:
    lines = (out / "agents.env").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_password_broker_lets_in_the_generated_login_and_nobody_else(tmp_path: Path) -> None:
    auth = tmp_path / "mqtt-auth"
    assert generate_password(auth).returncode == 0
    port, loopback_port = free_port(), free_port()
    config = local_copy("auth/mosquitto.conf", tmp_path, {1883: port, 1884: loopback_port}, passwords=auth)
    agent = inspect_config(repo_path("config/deploy/auth"), environ=login(auth)).agents[0].mqtt
    with running_broker(config, port, tmp_path):
        local = MqttSection(broker_url=f"mqtt://127.0.0.1:{port}", username_env=agent.username_env,
                            password_env=agent.password_env)
        assert connects(local, login(auth))
        assert not connects(MqttSection(broker_url=f"mqtt://127.0.0.1:{port}"))
        assert not connects(local, {**login(auth), "MQTT_PASSWORD": "wrong"})
        # the broker's own health check, anonymous on its loopback-only listener
        assert connects(MqttSection(broker_url=f"mqtt://127.0.0.1:{loopback_port}"))


def test_the_password_files_are_private_where_they_hold_the_password_and_rotate_on_rerun(tmp_path: Path) -> None:
    assert generate_password(tmp_path, "--user", "ops").returncode == 0
    first = login(tmp_path)
    assert first["MQTT_USERNAME"] == "ops" and len(first["MQTT_PASSWORD"]) >= 32
    assert (tmp_path / "agents.env").stat().st_mode & 0o777 == 0o600
    assert first["MQTT_PASSWORD"] not in (tmp_path / "passwd").read_text()
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"
    assert generate_password(tmp_path, "--user", "ops").returncode == 0
    assert login(tmp_path)["MQTT_PASSWORD"] != first["MQTT_PASSWORD"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".generate")] == []


def test_the_password_script_refuses_bad_arguments_with_a_reason(tmp_path: Path) -> None:
    result = generate_password(tmp_path, "--user", "a b")
    assert result.returncode == 2 and "a user name is" in result.stderr
    result = generate_password(tmp_path, "--bogus")
    assert result.returncode == 2 and "unknown option --bogus" in result.stderr
