"""An agent with tools from an MCP server, end to end: the server is down when the worker starts (the agent
is unavailable and says why), comes up (the agent becomes available without a restart), and a task's
LLM calls its tool through the worker's MCP session."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes import anthropic_api
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic
from fakes.anthropic_replies import Reply, Text, ToolUse, tool_calls, tool_results
from tests.e2e.stack import MqttPeer, Stack, write_agent
from tests.e2e.test_reverification import wait_for_log
from tests.workers.tools.mcp.conftest import HttpServer

fake_anthropic = anthropic_api.fake_anthropic
pytestmark = pytest.mark.slow  # a worker start-up imports the Anthropic SDK: about 5 s


@pytest.fixture
def agents(unique_id: str) -> dict[str, str]:
    return {"mcp": f"mcp-{unique_id}", "echo": f"echo-{unique_id}"}


@pytest.fixture
def mcp_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpServer]:
    monkeypatch.setenv("MCP_TEST_MARKS", str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = HttpServer(tmp_path, port)
    yield server
    server.stop()


@pytest.fixture
def config_dir(tmp_path: Path, agents: dict[str, str], mqtt_url: str, fake_anthropic: FakeAnthropic,
               mcp_server: HttpServer) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    # A worker with no agent it can serve exits; this one always has its echo agent.
    write_agent(directory, agents["echo"], mqtt_url)
    (directory / "mcp.toml").write_text(
        f'[agent]\nid = "{agents["mcp"]}"\n'
        f'[mqtt]\nbroker_url = "{mqtt_url}"\n'
        f'[llm]\nprovider = "anthropic"\nmodel = "claude-haiku-5-5"\nbase_url = "{fake_anthropic.url}"\n'
        f'api_key_env = "{API_KEY_ENV}"\nmax_retries = 0\ntimeout_s = 10\n'
        f'[tools.remote]\nimpl = "mcp"\nconfig = {{ url = "{mcp_server.url}" }}\nallow = ["echo"]\n'
    )
    return directory


def echoes_then_answers(request: dict[str, Any]) -> Reply:
    results = tool_results(request)
    if not results:
        return tool_calls(ToolUse("remote__echo", {"text": "over MCP"}))
    return Text(f"The server said: {results[0]['content']}")


def test_an_agent_whose_mcp_server_was_down_is_served_once_it_is_up(
    stack: Stack, peer: MqttPeer, agents: dict[str, str], fake_anthropic: FakeAnthropic, mcp_server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = agents["mcp"]
    monkeypatch.setenv("AGENT2389_REVERIFY_INTERVAL", "1")
    peer.subscribe(f"/control/agents/{agent}/status")
    worker = stack.worker()
    stack.bridge()
    wait_for_log(worker, "MCP server 'remote'", timeout_s=30)
    peer.wait_for_status(agent, "unavailable")

    mcp_server.start()
    peer.wait_for_status(agent, "available", timeout_s=30)
    fake_anthropic.respond(echoes_then_answers)
    cid = f"conv-{uuid.uuid4().hex[:8]}"
    peer.subscribe(f"/conversations/{cid}/#")
    task = peer.send_task(agent, cid, "say something over MCP")

    [(topic, body, _)] = peer.expect(1, timeout_s=30)
    assert (topic, body) == (f"/conversations/{cid}/{agent}", {"task_id": task["task_id"],
                                                               "response": "The server said: echo: over MCP"})
    assert worker.popen.poll() is None
