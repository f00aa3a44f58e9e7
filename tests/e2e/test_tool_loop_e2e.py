"""A task that needs a tool, end to end: MQTT in, bridge, worker, the fake Anthropic API asking for
file_read, the tool process reading the file, the answer out on the conversation topic."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from fakes import anthropic_api
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Reply, Text, ToolUse, tool_calls, tool_results
from tests.e2e.stack import MqttPeer, Stack, write_file_reader

fake_anthropic = anthropic_api.fake_anthropic
pytestmark = pytest.mark.slow  # a worker start-up imports the Anthropic SDK: about 5 s


@pytest.fixture
def agents(unique_id: str) -> dict[str, str]:
    return {"reader": f"reader-{unique_id}"}


@pytest.fixture
def config_dir(tmp_path: Path, agents: dict[str, str], mqtt_url: str, fake_anthropic: FakeAnthropic) -> Path:
    directory = write_file_reader(tmp_path, agents["reader"], mqtt_url, fake_anthropic.url, API_KEY_ENV)
    return directory


def reads_then_answers(request: dict[str, Any]) -> Reply:
    results = tool_results(request)
    if not results:
        return tool_calls(ToolUse("file_read", {"path": "recipe.txt"}))
    return Text(f"The file says: {results[0]['content']}")


def test_a_task_reads_a_file_through_the_tool_loop(
    running: Stack, peer: MqttPeer, agents: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.respond(reads_then_answers)
    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")

    task = peer.send_task(agents["reader"], cid, "what is in recipe.txt?")

    [(topic, body, _)] = peer.expect(1, timeout_s=30)
    assert topic == f"/conversations/{cid}/{agents['reader']}"
    assert body == {"task_id": task["task_id"], "response": "The file says: the secret ingredient is basil"}
    assert [r.path for r in fake_anthropic.requests] == ["/v1/models", "/v1/messages", "/v1/messages"]
