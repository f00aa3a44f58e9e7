import json
import socket
import subprocess
import sys

import pytest

from agent2389.ops.cli import main
from agent2389.state.usage import TokenUsage
from tests.conftest import REPO
from tests.services import free_port
from tests.web.conftest import System


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str) -> None:
    monkeypatch.setenv("AGENT2389_REDIS_URL", redis_url)
    monkeypatch.setenv("AGENT2389_KEY_PREFIX", key_prefix)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_inspect_workers_prints_one_row_per_worker(capsys: pytest.CaptureFixture[str], system: System) -> None:
    system.worker("w1", agents=("echo",), active=1, processed=5, llm_waiting=12)
    system.worker("w2", agents=("writer",), age_s=60)
    code, out = run(capsys, "inspect", "workers")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["WORKER", "HOST", "PID", "AGENTS", "ACTIVE", "LLM-WAITING", "PROCESSED",
                                              "HEARTBEAT", "STATE"]
    assert lines[2].split()[:7] == ["w1", "host-w1", "1002", "echo", "1/4", "12", "5"] and lines[2].endswith("online")
    assert lines[3].endswith("offline")


def test_inspect_queues_and_agents_as_json(capsys: pytest.CaptureFixture[str], system: System) -> None:
    system.bridge()
    system.worker("w1")
    system.queue("echo", 2)
    system.task("echo", "t1", 0.1)
    code, out = run(capsys, "inspect", "queues", "--json")
    assert code == 0 and {q["queue"]: q["length"] for q in json.loads(out)}["agent.echo"] == 2
    code, out = run(capsys, "inspect", "agents", "--json")
    echo = {a["agent"]: a for a in json.loads(out)}["echo"]
    assert (echo["tasks_completed"], echo["status"]) == (1, "available")


def test_inspect_tasks_filters_like_the_api(capsys: pytest.CaptureFixture[str], system: System) -> None:
    system.task("echo", "t-ok", 0.1)
    system.task("echo", "t-bad", 0.1, error_code="llm_error")
    code, out = run(capsys, "inspect", "tasks", "--state", "failed")
    assert code == 0 and "t-bad" in out and "llm_error" in out and "t-ok" not in out
    assert run(capsys, "inspect", "tasks", "--limit", "0")[0] == 2


def test_status_is_one_screen_and_exits_zero_only_when_healthy(capsys: pytest.CaptureFixture[str],
                                                              system: System) -> None:
    system.healthy()
    system.task("echo", "t-bad", 0.1, error_code="llm_error")
    code, out = run(capsys, "status")
    assert code == 0 and out.startswith("system: healthy")
    for section in ("AGENTS", "WORKERS", "QUEUES", "LAST ERRORS"):
        assert f"\n{section}\n" in out
    assert "t-bad  llm_error: the model is overloaded" in out
    system.presence.leave("w1")
    code, out = run(capsys, "status")
    assert code == 1 and out.startswith("system: unhealthy")


def test_status_and_inspect_report_a_dead_redis_plainly(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT2389_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    code, out = run(capsys, "status")
    assert code == 1 and "redis            unhealthy  Redis did not answer" in out
    assert main(["inspect", "workers"]) == 1
    assert "Redis did not answer" in capsys.readouterr().err


def test_control_characters_from_redis_reach_the_terminal_escaped_never_raw(
    capsys: pytest.CaptureFixture[str], system: System
) -> None:
    system.bridge()
    system.worker("w\x1b[2J\x1b]0;pwned\x07", agents=("echo",))
    system.task("echo", "task\r\x1b[1A forged line", 0.1, error_code="llm_error")
    outputs = [run(capsys, *argv)[1] for argv in (("inspect", "workers"), ("inspect", "tasks"), ("status",))]
    for out in outputs:
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "w\\x1b[2J\\x1b]0;pwned\\x07" in outputs[0]
    assert "task\\r\\x1b[1A forged line" in outputs[1] and "task\\r\\x1b[1A forged line" in outputs[2]


def test_status_names_the_redis_it_cannot_reach_without_its_password(capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("AGENT2389_REDIS_URL", f"redis://:hunter2secret@127.0.0.1:{port}/0")
    code, out = run(capsys, "status")
    assert code == 1 and f"at redis://127.0.0.1:{port}/0" in out
    assert "hunter2secret" not in out


def test_status_names_the_mqtt_broker_the_bridge_cannot_reach(capsys: pytest.CaptureFixture[str],
                                                              system: System) -> None:
    system.bridge(connected=False, subscribed=False, broker="mqtt://127.0.0.1:1999")
    system.worker("w1")
    code, out = run(capsys, "status")
    assert code == 1 and "not connected to the MQTT broker at mqtt://127.0.0.1:1999" in out


def test_status_lists_the_processes_up_restarted(capsys: pytest.CaptureFixture[str], system: System) -> None:
    system.healthy()
    system.client.hset(system.keys.process_restarts(), mapping={"worker-2": 3})
    _, out = run(capsys, "status")
    assert "\nRESTARTS (agent2389 up)\n  worker-2         restarted 3 times" in out


def test_web_on_a_port_in_use_says_so_in_one_line_and_exits_2() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "agent2389.ops.cli", "web", "--port", str(port), "--host",
                                 "127.0.0.1"], capture_output=True, text=True, cwd=REPO, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"agent2389 web: port {port} is already in use by another program (Address already in use); choose "
        "another with --port or AGENT2389_WEB_PORT")
    assert "Traceback" not in result.stderr


def test_status_shows_each_agents_llm_usage_and_limiter_waits(capsys: pytest.CaptureFixture[str],
                                                             system: System) -> None:
    system.healthy()
    system.stats.llm_call("echo", "claude-test", 0.1, 120, 60, ok=True)
    system.stats.llm_usage("echo", "claude-test", TokenUsage(120, 60, 900, 0), 0.0125, "USD")
    system.stats.llm_wait("echo", 0.25)
    system.stats.llm_wait("echo", 0.75)
    system.stats.flush()
    _, out = run(capsys, "status")
    llm = out.split("\nLLM\n", 1)[1].split("\n\n", 1)[0]
    header, _, row = llm.splitlines()
    assert header.split() == ["AGENT", "CALLS/H", "TOKENS/H", "COST/H", "TOKENS/DAY", "CACHE", "HITS", "LIMIT",
                              "WAITS", "AVG", "WAIT"]
    assert row.split() == ["echo", "1", "1080", "0.0125", "USD", "1080", "88%", "2", "500", "ms"]
