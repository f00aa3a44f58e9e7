"""The research example in config/examples/ works as shipped: its tools start and its tool loop runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent2389.config.files import load_agents
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Text, ToolUse, tool_calls
from tests.conftest import REPO
from tests.workers.llm.agents import task
from workers.llm import build_runner
from workers.llm.anthropic_runner import AnthropicRunner


def test_the_research_agent_keeps_notes_through_its_tools(
    fake_anthropic: FakeAnthropic, runner_for: Callable[..., AnthropicRunner], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    [shipped] = load_agents(REPO / "config" / "examples" / "research")
    llm = shipped.llm.model_copy(update={"base_url": fake_anthropic.url, "api_key_env": API_KEY_ENV})
    agent = shipped.model_copy(update={"llm": llm})
    monkeypatch.chdir(tmp_path)  # the example's data root is relative to the worker's directory
    fake_anthropic.reply(
        tool_calls(ToolUse("file_write", {"path": "mqtt.md", "content": "QoS 1 is at least once"})),
        tool_calls(ToolUse("file_read", {"path": "mqtt.md"})),
        Text("Noted: QoS 1 is at least once."),
    )

    runner = runner_for(agent)
    runner.verify()
    answer = runner.run(task(agent, "What does QoS 1 mean?", "MQTT"))

    assert answer == "Noted: QoS 1 is at least once."
    assert (tmp_path / "data" / "research" / "mqtt.md").read_text() == "QoS 1 is at least once"
    offered = [tool["name"] for tool in fake_anthropic.message_requests()[0]["tools"]]
    assert offered == ["http_request", "file_read", "file_write"]
    assert isinstance(build_runner(agent), AnthropicRunner)
