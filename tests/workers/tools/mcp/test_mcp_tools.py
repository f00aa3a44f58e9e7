"""Tools from real MCP servers (stdio and Streamable HTTP), called as the LLM calls any tool."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from agent2389.protocol.errors import ToolExecutionError
from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from tests.workers.tools.mcp.conftest import HttpServer, stdio_entry
from tests.workers.tools.sample_tools import SAMPLE
from workers.progress import TaskProgress
from workers.tools.executor import ToolCall, ToolExecutor

# MCP servers run as processes of their own: seconds per test.
pytestmark = pytest.mark.slow

MakeExecutor = Callable[..., ToolExecutor]
Entry = Callable[..., dict[str, Any]]


def wait_for_file(path: Path, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    return path.read_text()


def test_a_servers_tools_are_offered_as_entry__tool_with_its_descriptions_and_schemas(
    executor_for: MakeExecutor, server_entry: Entry
) -> None:
    executor = executor_for({"test": server_entry()})

    offered = {d["name"]: d for d in executor.descriptions}

    assert {"test__echo", "test__hang", "test__fail", "test__crash"} <= set(offered)
    assert offered["test__echo"]["description"] == "Repeat the text."
    assert offered["test__echo"]["parameters"]["required"] == ["text"]


def test_a_call_reaches_the_server_and_its_text_comes_back(executor_for: MakeExecutor, server_entry: Entry) -> None:
    executor = executor_for({"test": server_entry()})

    outcome = executor.run(ToolCall("test__echo", {"text": "hello"}))

    assert (outcome.content, outcome.is_error) == ("echo: hello", False)


def test_progress_events_of_an_mcp_call_name_the_server_and_its_tool(executor_for: MakeExecutor,
                                                                     server_entry: Entry) -> None:
    executor = executor_for({"test": server_entry()})
    events: list[dict[str, Any]] = []

    class Sink:
        def emit(self, topic: str, payload: str) -> None:
            events.append(json.loads(payload))

    executor.run(ToolCall("test__echo", {"text": "hello"}), progress=TaskProgress(Sink(), "a", "t", "c"))

    call, done = events
    assert call["message"] == "calling MCP tool echo of test (test__echo)"
    assert done["event_type"] == "ToolComplete"
    assert {k: done["metadata"][k] for k in ("tool", "mcp_server", "mcp_tool")} == {
        "tool": "test__echo", "mcp_server": "test", "mcp_tool": "echo"}


def test_allow_offers_only_the_listed_tools_and_refuses_calls_to_the_others(executor_for: MakeExecutor,
                                                                            marks: Path) -> None:
    executor = executor_for({"test": stdio_entry(allow=["echo"])})

    refused = executor.run(ToolCall("test__crash", {}))

    assert [d["name"] for d in executor.descriptions] == ["test__echo"]
    assert refused.is_error and refused.content == "unknown tool 'test__crash': this agent's tools are test__echo"
    assert (marks / "starts").read_text().count("\n") == 1


def test_an_allow_list_naming_a_tool_the_server_lacks_keeps_the_agent_unavailable(
    executor_for: MakeExecutor, marks: Path
) -> None:
    executor = executor_for({"test": stdio_entry(allow=["echo", "ecko"])}, start=False)

    with pytest.raises(ToolExecutionError, match="MCP server 'test' offers no tool named ecko"):
        executor.start()


def test_parameters_are_checked_against_the_servers_schema_before_any_call(
    executor_for: MakeExecutor, marks: Path
) -> None:
    executor = executor_for({"test": stdio_entry()})

    outcome = executor.run(ToolCall("test__echo", {"text": 5}))

    assert outcome.is_error
    assert outcome.content.startswith("invalid parameters for tool 'test__echo': text: 5 is not of type 'string'")


def test_a_hanging_tool_times_out_is_cancelled_on_the_server_and_the_worker_keeps_serving(
    executor_for: MakeExecutor, server_entry: Entry, marks: Path
) -> None:
    executor = executor_for({"test": server_entry(timeout_s=1, retries=2)})

    started = time.monotonic()
    hung = executor.run(ToolCall("test__hang", {}))
    elapsed = time.monotonic() - started
    after = executor.run(ToolCall("test__echo", {"text": "still here"}))

    assert hung.is_error and "did not finish within 1 s" in hung.content
    assert 1 <= elapsed < 5  # one attempt: time-outs are not retried
    assert wait_for_file(marks / "hang") == "cancelled"
    assert (after.content, after.is_error) == ("echo: still here", False)


def test_an_error_result_goes_back_to_the_llm_as_a_tool_error_without_retries(
    executor_for: MakeExecutor, server_entry: Entry
) -> None:
    executor = executor_for({"test": server_entry(retries=3)})

    outcome = executor.run(ToolCall("test__fail", {}))

    assert outcome.is_error
    assert outcome.content == ("tool 'test__fail' failed: the MCP tool reported an error: "
                               "Error executing tool fail: the tool failed on purpose")


def test_a_huge_result_is_cut_to_the_result_limit(executor_for: MakeExecutor, server_entry: Entry) -> None:
    executor = executor_for({"test": server_entry()})

    outcome = executor.run(ToolCall("test__huge", {"chars": 300_000}))

    assert not outcome.is_error
    assert outcome.content.startswith("x" * 100_000 + "\n[truncated: the result had 300000 characters]")


def test_an_image_in_a_result_is_described_not_dropped(executor_for: MakeExecutor, marks: Path) -> None:
    executor = executor_for({"test": stdio_entry()})

    outcome = executor.run(ToolCall("test__picture", {}))

    assert outcome.content == "a red dot:\n[image (image/png, about 75 bytes) not shown to the model]"


def test_a_stdio_server_that_crashes_mid_call_is_restarted_and_the_call_ends_in_a_tool_error(
    executor_for: MakeExecutor, marks: Path
) -> None:
    executor = executor_for({"test": stdio_entry(retries=1, timeout_s=20)})

    crashed = executor.run(ToolCall("test__crash", {}))
    after = executor.run(ToolCall("test__echo", {"text": "back"}))

    assert crashed.is_error
    assert crashed.content.startswith("tool 'test__crash' failed after 2 attempts: MCP server 'test' went away")
    assert (after.content, after.is_error) == ("echo: back", False)
    assert (marks / "starts").read_text().count("\n") == 3  # first start, one restart per crash


def test_an_http_server_that_dies_mid_call_gives_a_tool_error_not_a_hang(
    executor_for: MakeExecutor, http_server: HttpServer
) -> None:
    http_server.start()
    executor = executor_for({"test": http_server.entry(retries=1, timeout_s=20)})

    started = time.monotonic()
    outcome = executor.run(ToolCall("test__crash", {}))

    assert outcome.is_error and "MCP server 'test'" in outcome.content
    assert time.monotonic() - started < 15


def test_a_server_down_at_start_keeps_the_agent_unavailable_until_it_is_up(
    executor_for: MakeExecutor, http_server: HttpServer
) -> None:
    executor = executor_for({"test": http_server.entry()}, start=False)

    with pytest.raises(ToolExecutionError, match=r"MCP server 'test' \(http://127.0.0.1:\d+/mcp\) cannot be used"):
        executor.start()
    http_server.start()
    executor.start()  # what re-verification does

    assert executor.run(ToolCall("test__echo", {"text": "up"})).content == "echo: up"


def test_a_stdio_command_that_cannot_start_keeps_the_agent_unavailable_and_says_why(
    executor_for: MakeExecutor
) -> None:
    executor = executor_for({"test": {"impl": "mcp", "config": {"command": "agent2389-no-such-mcp-server"}}},
                            start=False)

    with pytest.raises(ToolExecutionError, match=r"MCP server 'test' \(agent2389-no-such-mcp-server\) cannot be used"):
        executor.start()


def test_only_the_environment_variables_the_config_names_reach_a_stdio_server(
    executor_for: MakeExecutor, marks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_TOKEN", "tok-123")
    monkeypatch.setenv("MCP_TEST_OTHER", "not-for-the-server")
    entry = stdio_entry()
    entry["config"]["env"] += ["MCP_TEST_TOKEN"]
    executor = executor_for({"test": entry})

    assert executor.run(ToolCall("test__secret_env", {})).content == "token=tok-123 other=-"


def test_a_missing_environment_variable_keeps_the_agent_unavailable(executor_for: MakeExecutor,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_TEST_TOKEN", raising=False)
    executor = executor_for({"test": {"impl": "mcp", "config": {"command": sys.executable,
                                                                  "env": ["MCP_TEST_TOKEN"]}}}, start=False)

    with pytest.raises(ToolExecutionError, match="needs environment variable MCP_TEST_TOKEN, which is not set"):
        executor.start()


def test_a_tool_list_change_notification_refreshes_the_offered_tools(
    executor_for: MakeExecutor, server_entry: Entry
) -> None:
    executor = executor_for({"test": server_entry()})

    executor.run(ToolCall("test__grow", {}))
    deadline = time.monotonic() + 10
    while "test__late" not in {d["name"] for d in executor.descriptions}:
        assert time.monotonic() < deadline, "the new tool was never offered"
        time.sleep(0.05)

    assert executor.run(ToolCall("test__late", {})).content == "late tool here"


def test_mcp_calls_are_counted_per_exposed_tool_name(
    executor_for: MakeExecutor, marks: Path, redis_client: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    executor = executor_for({"test": stdio_entry(timeout_s=1)}, stats=StatsRecorder(redis_client, keys))

    for call in [ToolCall("test__echo", {"text": "a"}), ToolCall("test__fail", {}), ToolCall("test__hang", {})]:
        executor.run(call)

    echo = redis_client.hgetall(keys.tool_stats("tool-tester", "test__echo"))
    fail = redis_client.hgetall(keys.tool_stats("tool-tester", "test__fail"))
    hang = redis_client.hgetall(keys.tool_stats("tool-tester", "test__hang"))
    assert (echo["executions"], echo.get("failures")) == ("1", None)
    assert (fail["executions"], fail["failures"]) == ("1", "1")
    assert (hang["executions"], hang["timeouts"]) == ("1", "1")


def test_closing_the_executor_stops_the_stdio_server(executor_for: MakeExecutor, marks: Path) -> None:
    executor = executor_for({"test": stdio_entry()})
    pid = int((marks / "starts").read_text().split()[0])

    executor.close()

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_headers_for_an_http_server_come_from_the_environment_variables_the_config_names(
    executor_for: MakeExecutor, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_AUTH", "Bearer t0ken-0123456789")
    http_server.start()
    entry = http_server.entry()
    entry["config"]["headers_env"] = {"Authorization": "MCP_TEST_AUTH"}
    executor = executor_for({"test": entry})

    assert executor.run(ToolCall("test__authorization", {})).content == "Bearer t0ken-0123456789"


def test_calls_from_many_threads_share_one_session_and_do_not_wait_for_each_other(
    executor_for: MakeExecutor, server_entry: Entry, marks: Path
) -> None:
    executor = executor_for({"test": server_entry(timeout_s=3)})

    started = time.monotonic()
    hung, *echoes = executor.run_all([ToolCall("test__hang", {})] +
                                     [ToolCall("test__echo", {"text": str(n)}) for n in range(5)])

    assert hung.is_error and "did not finish within 3 s" in hung.content
    assert [echo.content for echo in echoes] == [f"echo: {n}" for n in range(5)]
    assert time.monotonic() - started < 6
    assert (marks / "starts").read_text().count("\n") == 1


def test_a_stdio_server_that_exits_while_idle_is_restarted_and_the_next_call_succeeds(
    executor_for: MakeExecutor, marks: Path
) -> None:
    executor = executor_for({"test": stdio_entry(retries=2)})
    first_pid = int((marks / "starts").read_text().split()[0])

    os.kill(first_pid, signal.SIGKILL)
    outcome = executor.run(ToolCall("test__echo", {"text": "again"}))

    assert (outcome.content, outcome.is_error) == ("echo: again", False)
    assert (marks / "starts").read_text().count("\n") == 2


def test_a_secret_the_server_puts_in_an_error_never_reaches_the_llm(
    executor_for: MakeExecutor, marks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_TOKEN", "tok-0123456789abcdef")
    entry = stdio_entry()
    entry["config"]["env"] += ["MCP_TEST_TOKEN"]
    executor = executor_for({"test": entry})

    outcome = executor.run(ToolCall("test__fail_with", {"message": "bad token tok-0123456789abcdef"}))

    assert outcome.is_error
    assert outcome.content.endswith("Error executing tool fail_with: bad token [redacted]")


def test_a_tool_entry_named_like_an_mcp_tool_keeps_the_agent_unavailable(executor_for: MakeExecutor,
                                                                         marks: Path) -> None:
    executor = executor_for({"test": stdio_entry(), "test__echo": {"impl": SAMPLE + "EchoTool"}}, start=False)

    with pytest.raises(ToolExecutionError, match="tool name 'test__echo' is also the name of an MCP server's tool"):
        executor.start()
