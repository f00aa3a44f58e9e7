"""Tool calls as the LLM makes them: allow-list, schema, time-outs, retries and isolation."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from agent2389.logs import JsonFormatter, span
from agent2389.protocol.errors import ToolExecutionError
from agent2389.state.keys import Keys
from agent2389.state.stats import StatsRecorder
from tests.e2e.stack import wait_until
from tests.workers.tools.sample_tools import SAMPLE
from workers.tools.executor import ToolCall, ToolExecutor

# Every test starts tool processes (a Python interpreter each).
pytestmark = pytest.mark.slow

MakeExecutor = Callable[..., ToolExecutor]
STRICT = {"impl": SAMPLE + "BrokenTool"}


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_call_runs_in_a_tool_process_not_in_the_worker(executor_for: MakeExecutor) -> None:
    executor = executor_for({"echo": {"impl": SAMPLE + "EchoTool"}})

    outcome = executor.run(ToolCall("echo", {"text": "hi"}))

    assert not outcome.is_error
    assert '"echo": "hi"' in outcome.content
    assert f'"pid": {os.getpid()}' not in outcome.content


def test_an_unknown_tool_is_refused_and_the_allowed_ones_are_named(executor_for: MakeExecutor) -> None:
    executor = executor_for({"echo": {"impl": SAMPLE + "EchoTool"}})

    outcome = executor.run(ToolCall("shell", {"command": "rm -rf /"}))

    assert outcome.is_error
    assert outcome.content == "unknown tool 'shell': this agent's tools are echo"


def test_parameters_that_break_the_schema_never_reach_the_tool(executor_for: MakeExecutor, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    executor = executor_for({"echo": {"impl": SAMPLE + "EchoTool"},
                             "broken": {"impl": SAMPLE + "BrokenTool", "config": {"counter": str(counter)}}})

    wrong_type = executor.run(ToolCall("echo", {"text": 5}))
    extra = executor.run(ToolCall("echo", {"text": "a", "shell": "x"}))
    not_an_object = executor.run(ToolCall("broken", ["a", "list"]))

    assert wrong_type.is_error
    assert "invalid parameters for tool 'echo': text: 5 is not of type 'string'" in wrong_type.content
    assert extra.is_error and "'shell' was unexpected" in extra.content
    assert not_an_object.is_error and "takes a JSON object" in not_an_object.content
    assert not counter.exists()


def test_a_tool_stuck_in_a_loop_is_stopped_at_its_timeout_while_other_calls_go_on(executor_for: MakeExecutor) -> None:
    # A generous timeout: the other calls may each start a fresh tool process on a loaded machine.
    executor = executor_for({"spin": {"impl": SAMPLE + "SpinTool", "timeout_s": 4},
                             "echo": {"impl": SAMPLE + "EchoTool"}})
    [stuck_pid] = executor._pool.pids()
    results = {}

    def spin() -> None:
        started = time.monotonic()
        results["spin"] = executor.run(ToolCall("spin", {}))
        results["spin_s"] = time.monotonic() - started

    spinner = threading.Thread(target=spin)
    spinner.start()
    wait_until(lambda: stuck_pid not in executor._pool.pids(), 10, "the spin call has its tool process")
    meanwhile = [executor.run(ToolCall("echo", {"text": str(n)})) for n in range(3)]
    spinning_while_others_ran = spinner.is_alive()
    spinner.join(timeout=15)

    assert spinning_while_others_ran
    assert all(not outcome.is_error for outcome in meanwhile)
    assert results["spin"].is_error
    assert results["spin"].content == "tool 'spin' failed: tool 'spin' did not finish within 4 s and was stopped"
    assert 4 <= results["spin_s"] < 7
    assert not is_running(stuck_pid)
    assert not executor.run(ToolCall("echo", {"text": "after"})).is_error


def test_a_retryable_failure_is_retried_until_it_succeeds(executor_for: MakeExecutor, tmp_path: Path) -> None:
    config = {"counter": str(tmp_path / "n"), "failures": 2}
    executor = executor_for({"flaky": {"impl": SAMPLE + "FlakyTool", "config": config, "retries": 2}})

    outcome = executor.run(ToolCall("flaky", {}))

    assert outcome.is_error is False
    assert outcome.content == "succeeded on attempt 3"


def test_a_call_that_keeps_failing_is_returned_as_an_error_after_its_retries(
    executor_for: MakeExecutor, tmp_path: Path
) -> None:
    counter = tmp_path / "n"
    executor = executor_for({"flaky": {"impl": SAMPLE + "FlakyTool", "retries": 1,
                                       "config": {"counter": str(counter), "failures": 5}}})

    outcome = executor.run(ToolCall("flaky", {}))

    assert outcome.is_error
    assert outcome.content == "tool 'flaky' failed after 2 attempts: temporary failure on attempt 2"
    assert counter.read_text() == "2"


def test_a_failure_that_is_not_retryable_is_tried_once(executor_for: MakeExecutor, tmp_path: Path) -> None:
    counter = tmp_path / "n"
    executor = executor_for({"broken": {"impl": SAMPLE + "BrokenTool", "retries": 3,
                                        "config": {"counter": str(counter)}}})

    outcome = executor.run(ToolCall("broken", {}))

    assert outcome.is_error and outcome.content == "tool 'broken' failed: permanently broken"
    assert counter.read_text() == "1"


def test_a_crashing_tool_process_is_reported_and_replaced(executor_for: MakeExecutor) -> None:
    executor = executor_for({"crash": {"impl": SAMPLE + "CrashTool"}, "echo": {"impl": SAMPLE + "EchoTool"}})

    crashed = executor.run(ToolCall("crash", {}))

    assert crashed.is_error and "the tool process exited during the call" in crashed.content
    assert not executor.run(ToolCall("echo", {"text": "still here"})).is_error


def test_a_tool_that_prints_cannot_corrupt_its_reply(executor_for: MakeExecutor) -> None:
    executor = executor_for({"chatty": {"impl": SAMPLE + "ChattyTool"}})

    assert executor.run(ToolCall("chatty", {})).content == "spoke after printing"


def test_an_unexpected_tool_error_reaches_the_llm_without_secrets_or_paths(
    executor_for: MakeExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKY_TOOL_KEY", "plain-secret-value")
    executor = executor_for({"leaky": {"impl": SAMPLE + "LeakyTool", "config": {"key_env": "LEAKY_TOOL_KEY"}}})

    outcome = executor.run(ToolCall("leaky", {}))

    assert outcome.is_error and outcome.content.startswith("tool 'leaky' failed: RuntimeError: login failed")
    assert "plain-secret-value" not in outcome.content
    assert "/srv/app" not in outcome.content


@pytest.mark.parametrize(("impl", "message"), [
    (SAMPLE + "FailingInitTool", "tool 'inventory' failed to initialize: cannot reach the inventory database"),
    (SAMPLE + "BadSchemaTool", "tool 'inventory' describes invalid parameters: 'no-such-type' is not valid"),
    (SAMPLE + "NotATool", "NotATool is not a tool: it lacks describe(), initialize(), execute()"),
    ("python:no_such_package.tools:Thing", "cannot import module 'no_such_package.tools' (ModuleNotFoundError)"),
    ("python:tests.workers.tools.sample_tools:Missing", "module 'tests.workers.tools.sample_tools' has no class"),
])
def test_a_tool_that_cannot_start_keeps_the_agent_from_starting_and_says_why(
    executor_for: MakeExecutor, impl: str, message: str
) -> None:
    executor = executor_for({"inventory": {"impl": impl}}, start=False)

    with pytest.raises(ToolExecutionError) as raised:
        executor.start()

    assert message in str(raised.value)
    assert executor._pool.pids() == []


def test_calls_asked_for_in_one_turn_run_at_the_same_time(executor_for: MakeExecutor) -> None:
    executor = executor_for({"sleep": {"impl": SAMPLE + "SleepTool"}})
    started = time.monotonic()

    outcomes = executor.run_all([ToolCall("sleep", {"seconds": 1}) for _ in range(3)])

    assert [o.content for o in outcomes] == ["slept 1 s"] * 3
    assert time.monotonic() - started < 2.5


def test_every_execution_is_counted_per_tool(
    executor_for: MakeExecutor, redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    keys = Keys(key_prefix)
    stats = StatsRecorder(redis_client, keys)
    executor = executor_for({"echo": {"impl": SAMPLE + "EchoTool"},
                             "spin": {"impl": SAMPLE + "SpinTool", "timeout_s": 0.5},
                             "broken": {"impl": SAMPLE + "BrokenTool", "config": {"counter": str(tmp_path / "n")}}},
                            stats=stats)

    for call in [ToolCall("echo", {"text": "a"}), ToolCall("echo", {"text": "b"}), ToolCall("spin", {}),
                 ToolCall("broken", {}), ToolCall("nope", {})]:
        executor.run(call)

    echo = redis_client.hgetall(keys.tool_stats("tool-tester", "echo"))
    spin = redis_client.hgetall(keys.tool_stats("tool-tester", "spin"))
    broken = redis_client.hgetall(keys.tool_stats("tool-tester", "broken"))
    assert (echo["executions"], echo.get("failures")) == ("2", None)
    assert (spin["executions"], spin["failures"], spin["timeouts"]) == ("1", "1", "1")
    assert float(spin["duration_seconds_sum"]) >= 0.5
    assert (broken["executions"], broken["failures"], broken.get("timeouts")) == ("1", "1", None)
    assert not redis_client.exists(keys.tool_stats("tool-tester", "nope"))


def test_closing_stops_every_tool_process(executor_for: MakeExecutor) -> None:
    executor = executor_for({"sleep": {"impl": SAMPLE + "SleepTool"}})
    executor.run_all([ToolCall("sleep", {"seconds": 0.1}) for _ in range(2)])
    pids = executor._pool.pids()

    executor.close()

    assert len(pids) == 2
    assert not any(is_running(pid) for pid in pids)


def test_calls_run_at_the_same_time_still_log_inside_the_task_span(executor_for: MakeExecutor) -> None:
    lines: list[dict[str, object]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter().format(record)))

    executor = executor_for({"echo": {"impl": SAMPLE + "EchoTool"}})
    logger, handler = logging.getLogger("agent2389.tools"), Keep()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with span("task", task_id="t-9"):
            executor.run_all([ToolCall("echo", {"text": "a"}), ToolCall("echo", {"text": "b"})])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    spans = [line.get("span") for line in lines if "tool echo ok" in str(line["fields"])]
    assert spans == [{"name": "task", "task_id": "t-9"}] * 2
