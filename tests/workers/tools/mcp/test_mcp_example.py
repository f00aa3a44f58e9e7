"""The MCP example in config/examples/mcp works here as shipped: its server starts with no network, the
LLM calls its tools, and ``agent2389 validate --connect`` lists them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent2389.config.files import load_agents
from fakes.anthropic_api import API_KEY_ENV, FakeAnthropic, fake_anthropic  # noqa: F401 (the fixture)
from fakes.anthropic_replies import Text, ToolUse, tool_calls, tool_results
from tests.conftest import REPO
from tests.workers.llm.agents import task
from workers.llm.anthropic_runner import AnthropicRunner

# The example MCP server runs as a process of its own.
pytestmark = pytest.mark.slow

EXAMPLE = REPO / "config" / "examples" / "mcp"
# The example runs `python3`: the environment's interpreter first, as with an activated venv.
VENV_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def agent2389(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent2389.ops.cli", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env={**os.environ, "PATH": VENV_PATH})


def test_the_librarian_looks_a_book_up_through_the_example_mcp_server(
    fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch  # noqa: F811 (the fixture)
) -> None:
    monkeypatch.setenv("PATH", VENV_PATH)
    monkeypatch.chdir(REPO)  # the example's server path is relative to the worker's directory
    [shipped] = load_agents(EXAMPLE)
    llm = shipped.llm.model_copy(update={"base_url": fake_anthropic.url, "api_key_env": API_KEY_ENV})
    agent = shipped.model_copy(update={"llm": llm})
    search = ToolUse("library__search_books", {"query": "kernighan"})
    fake_anthropic.reply(tool_calls(search), Text("The C Programming Language, ISBN 978-0-13-110362-7."))
    runner = AnthropicRunner(agent)
    try:
        runner.verify()
        answer = runner.run(task(agent, "Which books by Kernighan do you have?", "books"))
    finally:
        runner.close()

    first, second = fake_anthropic.message_requests()
    assert [tool["name"] for tool in first["tools"]] == ["library__search_books", "library__book_details"]
    [result] = tool_results(second)
    assert '"isbn": "978-0-13-110362-7"' in result["content"] and not result["is_error"]
    assert answer == "The C Programming Language, ISBN 978-0-13-110362-7."


def test_validate_connect_starts_the_example_server_and_lists_its_tools() -> None:
    result = agent2389("validate", "--config", "config/examples/mcp", "--connect")

    assert result.returncode == 0, result.stderr
    assert "ok: librarian: MCP server 'library' offers library__book_details, library__search_books" in result.stdout


def test_validate_connect_exits_1_and_says_which_server_cannot_be_used(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[agent]\nid = "a"\n[llm]\nprovider = "echo"\n'
                                     '[tools.gone]\nimpl = "mcp"\nconfig = { url = "http://127.0.0.1:9/mcp" }\n')

    result = agent2389("validate", "--config", str(tmp_path), "--connect")

    assert result.returncode == 1
    assert "error: a: MCP server 'gone' (http://127.0.0.1:9/mcp) cannot be used: ConnectError" in result.stderr
