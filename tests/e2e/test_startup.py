"""Processes started while Redis or the MQTT broker is unreachable: they say where, and stop cleanly; started
with a wrong setting, they refuse to start and say which."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.stack import Process, Stack, write_agent
from tests.services import free_port

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-pass-w0rd"


def unreachable_stack(tmp_path: Path, unique_id: str, key_prefix: str) -> tuple[Stack, int, int]:
    redis_port, mqtt_port = free_port(), free_port()
    config = tmp_path / "agents"
    config.mkdir()
    write_agent(config, f"echo-{unique_id}", f"mqtt://127.0.0.1:{mqtt_port}")
    return Stack(config, f"redis://:{PASSWORD}@127.0.0.1:{redis_port}/0", key_prefix, tmp_path), redis_port, mqtt_port


def wait_for_log(process: Process, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in process.log_path.read_text(errors="replace"):
        assert process.popen.poll() is None, f"{process.name} exited:\n{process.log_path.read_text()}"
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{process.log_path.read_text()}"
        time.sleep(0.1)


def test_a_bridge_names_the_redis_and_broker_it_cannot_reach_without_the_password_and_stops_cleanly(
    tmp_path: Path, unique_id: str, key_prefix: str
) -> None:
    stack, redis_port, mqtt_port = unreachable_stack(tmp_path, unique_id, key_prefix)
    bridge = stack.bridge()
    wait_for_log(bridge, f"cannot reach Redis at redis://127.0.0.1:{redis_port}/0")
    wait_for_log(bridge, f"cannot reach the MQTT broker at mqtt://127.0.0.1:{mqtt_port}")
    assert bridge.stop() == 0
    text = bridge.log_path.read_text()
    assert PASSWORD not in text and "Traceback" not in text


def test_a_worker_stopped_while_it_retries_its_first_connection_exits_0_without_a_traceback(
    tmp_path: Path, unique_id: str, key_prefix: str
) -> None:
    stack, redis_port, _ = unreachable_stack(tmp_path, unique_id, key_prefix)
    worker = stack.worker()
    wait_for_log(worker, f"127.0.0.1:{redis_port}")
    wait_for_log(worker, "Trying again")
    assert worker.stop() == 0
    text = worker.log_path.read_text()
    assert PASSWORD not in text
    assert "Traceback" not in text and "cannot join thread" not in text


@pytest.mark.parametrize("command", ["bridge", "worker", "web", "up"])
@pytest.mark.parametrize(("variable", "value", "allowed"), [
    ("AGENT2389_LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("LOG_FORMAT", "xml", "json, pretty"),
])
def test_a_process_with_a_wrong_log_setting_refuses_to_start_naming_the_variable_and_its_values(
    tmp_path: Path, unique_id: str, key_prefix: str, command: str, variable: str, value: str, allowed: str
) -> None:
    stack, _, _ = unreachable_stack(tmp_path, unique_id, key_prefix)
    env = {name: setting for name, setting in stack.env().items() if "LOG_" not in name}
    result = subprocess.run([sys.executable, "-m", "agent2389.ops.cli", command, "--config", str(stack.config_dir)],
                            capture_output=True, text=True, timeout=30, cwd=REPO, env={**env, variable: value})
    assert result.returncode == 2
    assert result.stderr == f"agent2389 {command}: {variable} must be one of {allowed}, not {value!r}\n"
