"""``agent2389 inject`` and ``agent2389 monitor`` against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from tests.conftest import REPO
from tests.e2e.stack import MqttPeer
from tests.services import free_port


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent2389.ops.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


Announce = Callable[[str, str], None]


def test_inject_publishes_a_valid_envelope_to_the_agents_input_topic(mqtt_url: str, unique_id: str, peer: MqttPeer,
                                                                     announce: Announce) -> None:
    announce(f"x-{unique_id}", "available")
    peer.subscribe(f"/control/agents/x-{unique_id}/input")
    result = cli("inject", "--broker", mqtt_url, "--agent", f"x-{unique_id}", "--instruction", "sum",
                 "--input", '{"n": [1, 2]}', "--conversation-id", "c-1", "--next", "y,z")
    assert result.returncode == 0, result.stderr
    [(topic, body, _)] = peer.expect(1)
    assert topic == f"/control/agents/x-{unique_id}/input"
    assert uuid.UUID(body["task_id"]) and body["conversation_id"] == "c-1" and body["instruction"] == "sum"
    assert body["input"] == {"n": [1, 2]} and body["topic"] == topic
    assert body["next"]["topic"] == "/control/agents/y/input"
    assert body["next"]["next"]["topic"] == "/control/agents/z/input" and body["next"]["next"]["next"] is None


def test_inject_wait_without_an_answer_exits_1_and_says_so(mqtt_url: str, unique_id: str,
                                                           announce: Announce) -> None:
    announce(f"mute-{unique_id}", "available")
    result = cli("inject", "--broker", mqtt_url, "--agent", f"mute-{unique_id}", "hi", "--wait", "1")
    assert result.returncode == 1 and "no answer within" in result.stderr


def test_inject_prints_an_error_answer_and_exits_1(mqtt_url: str, unique_id: str, peer: MqttPeer,
                                                   announce: Announce) -> None:
    agent = f"err-{unique_id}"
    announce(agent, "available")
    peer.subscribe(f"/control/agents/{agent}/input")
    process = subprocess.Popen([sys.executable, "-m", "agent2389.ops.cli", "inject", "--broker", mqtt_url, "--agent",
                                agent, "hi", "--wait", "10"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    [(_, task, _)] = peer.expect(1)
    peer.publish(f"/conversations/{task['conversation_id']}/{agent}",
                 {"error": {"code": "llm_error", "message": "model unavailable"}, "task_id": task["task_id"]})
    _out, err = process.communicate(timeout=15)
    assert process.returncode == 1 and "error llm_error: model unavailable" in err


def test_inject_to_an_agent_that_never_announced_itself_says_so_at_once_and_sends_nothing(
    mqtt_url: str, unique_id: str, peer: MqttPeer
) -> None:
    agent = f"ghost-{unique_id}"
    peer.subscribe(f"/control/agents/{agent}/input")
    started = time.monotonic()
    result = cli("inject", "--broker", mqtt_url, "--agent", agent, "hi")
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert f"no agent '{agent}' has announced itself on {mqtt_url}" in result.stderr
    assert "nothing sent" in result.stderr
    assert peer.quiet_for(0.5) == []


def test_inject_to_an_unavailable_agent_says_so_and_with_wait_sends_once_it_is_available(
    mqtt_url: str, unique_id: str, peer: MqttPeer, announce: Announce
) -> None:
    agent = f"late-{unique_id}"
    announce(agent, "unavailable")
    peer.subscribe(f"/control/agents/{agent}/input")
    refused = cli("inject", "--broker", mqtt_url, "--agent", agent, "hi")
    assert refused.returncode == 1 and f"agent '{agent}' is unavailable; nothing sent" in refused.stderr
    process = subprocess.Popen([sys.executable, "-m", "agent2389.ops.cli", "inject", "--broker", mqtt_url, "--agent",
                                agent, "hi", "--wait", "20"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert f"agent '{agent}' is unavailable; waiting up to 20 s for it to become available" in line
    assert peer.quiet_for(0.5) == []
    announce(agent, "available")
    [(_, task, _)] = peer.expect(1)
    peer.publish(f"/conversations/{task['conversation_id']}/{agent}", {"task_id": task["task_id"], "response": "ok"})
    out, _err = process.communicate(timeout=15)
    assert process.returncode == 0 and out.strip() == "ok"


def test_inject_rejects_bad_input_json_and_bad_agent_ids_clearly(mqtt_url: str) -> None:
    bad_json = cli("inject", "--broker", mqtt_url, "--agent", "a", "--input", "{nope")
    assert bad_json.returncode == 2 and "--input is not valid JSON" in bad_json.stderr
    bad_id = cli("inject", "--broker", mqtt_url, "--agent", "a/b", "x")
    assert bad_id.returncode == 2 and "must match" in bad_id.stderr


def test_inject_to_a_broker_that_is_not_there_fails_with_a_clear_message() -> None:
    result = cli("inject", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--agent", "a", "x")
    assert result.returncode == 2 and "cannot reach the MQTT broker" in result.stderr


def test_monitor_prints_status_and_conversation_traffic_as_json_lines(mqtt_url: str, unique_id: str) -> None:
    agent = f"mon-{unique_id}"
    peer = MqttPeer(mqtt_url)
    try:
        peer.publish(f"/control/agents/{agent}/status",
                     {"agent_id": agent, "status": "available", "timestamp": "2026-01-01T00:00:00Z"}, retain=True)
        process = subprocess.Popen([sys.executable, "-m", "agent2389.ops.cli", "monitor", "--broker", mqtt_url,
                                    "--agent", agent, "--format", "json", "--count", "2"], cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None
        first = process.stdout.readline()  # monitor is subscribed once the retained status shows
        peer.publish(f"/conversations/c9/{agent}", {"task_id": "t", "response": "done"})
        rest, _ = process.communicate(timeout=15)
    finally:
        peer.publish(f"/control/agents/{agent}/status", b"", retain=True)
        peer.close()
    lines = [json.loads(line) for line in (first + rest).splitlines()]
    assert lines[0]["topic"] == f"/control/agents/{agent}/status" and lines[0]["retained"] is True
    assert lines[1] == {"topic": f"/conversations/c9/{agent}", "retained": False,
                        "payload": {"task_id": "t", "response": "done"}}
