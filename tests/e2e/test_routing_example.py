"""``config/examples/routing`` (docs/routing.md's walk-through): it validates, on echo and with the
Anthropic lines switched on, and a v2 task sent to its researcher is answered with the trace the
documentation shows, and is one workflow in the task's timeline."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.stack import MqttPeer, Stack
from tests.e2e.workflows import EXAMPLE, ROLES, anthropic_variant, completed_workflow, copy_example, wait_routable


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent2389.ops.cli", "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_the_example_validates_with_a_strategy_each_and_capabilities() -> None:
    result = validate(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["researcher", "reviewer", "writer"]
    configs = {role: tomllib.loads((EXAMPLE / f"{role}.toml").read_text()) for role in ROLES}
    assert {role: c["routing"]["strategy"] for role, c in configs.items()} == {
        "researcher": "llm", "writer": "agent", "reviewer": "llm"}
    assert all(c["agent"]["capabilities"] and c["llm"]["provider"] == "echo" for c in configs.values())


def test_the_commented_anthropic_variant_validates_too(tmp_path: Path) -> None:
    for role in ROLES:
        text = anthropic_variant((EXAMPLE / f"{role}.toml").read_text())
        assert tomllib.loads(text)["llm"]["provider"] == "anthropic"
        (tmp_path / f"{role}.toml").write_text(text)
    result = validate(tmp_path)
    assert result.returncode == 0, result.stderr
    assert all("anthropic" in line for line in result.stdout.splitlines())


@pytest.mark.slow
def test_a_v2_task_to_the_researcher_comes_back_from_the_reviewer_with_the_documented_trace(
    tmp_path: Path, mqtt_url: str, redis_url: str, key_prefix: str, peer: MqttPeer, unique_id: str
) -> None:
    ids = copy_example(tmp_path / "agents", unique_id, mqtt_url)
    stack = Stack(tmp_path / "agents", redis_url, key_prefix, tmp_path)
    try:
        for agent_id in ids.values():
            peer.subscribe(f"/control/agents/{agent_id}/status")
        stack.worker()
        stack.bridge()
        for agent_id in ids.values():
            peer.wait_for_status(agent_id, "available")
        wait_routable(redis_url, key_prefix, list(ids.values()))
        cid = f"conv-{uuid.uuid4().hex[:8]}"
        peer.subscribe(f"/conversations/{cid}/#")
        task = peer.send_task(ids["researcher"], cid, "the 2389 protocol", version="2.0")
        [(topic, answer, _)] = peer.expect(1, timeout_s=30)
        flow = completed_workflow(redis_url, key_prefix, task["task_id"])
    finally:
        stack.stop_all()
    assert topic == f"/conversations/{cid}/{ids['reviewer']}", answer.get("routing_trace")
    assert answer["task_id"] == task["task_id"]
    assert [(t["from_agent"], t["to_agent"], t["step_number"]) for t in answer["routing_trace"]] == [
        (ids["researcher"], ids["writer"], 1), (ids["writer"], ids["reviewer"], 2), (ids["reviewer"], None, 3)]
    assert flow["path"] == [ids["researcher"], ids["writer"], ids["reviewer"]] and flow["state"] == "completed"
    assert [(h["strategy"], h["recorded"]) for h in flow["hops"]] == [("llm", True), ("agent", True)]
    assert flow["response_bytes"] == len(answer["response"].encode())
