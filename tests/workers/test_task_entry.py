"""A delivery entering the worker, on the real Redis ledger, with the MQTT side played by a recorder."""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import pytest
import redis

from agent2389.config.agent import AgentConfig
from agent2389.config.settings import Settings
from agent2389.state.keys import Keys
from agent2389.state.ledger import TaskLedger
from agent2389.state.presence import WorkerInfo
from agent2389.state.stats import StatsRecorder
from tests.workers.published import Recorder
from workers.llm.echo import EchoRunner
from workers.processing import Deps
from workers.task_entry import TaskEntry

AGENT = AgentConfig.model_validate({"agent": {"id": "a"}, "llm": {"provider": "echo"}})


def entry(redis_client: redis.Redis, key_prefix: str, publish: Recorder) -> tuple[TaskEntry, WorkerInfo]:
    keys = Keys(key_prefix)
    deps = Deps(TaskLedger(redis_client, keys), StatsRecorder(redis_client, keys), {"a": EchoRunner(AGENT)},
                publish, [])
    info = WorkerInfo(worker_id="w", host=socket.gethostname(), pid=1, agents=["a"], concurrency=1, started_at=0)
    return TaskEntry(Settings(agents=(AGENT,), key_prefix=key_prefix), deps, info), info


def task(**overrides: Any) -> dict[str, Any]:
    return {"task_id": str(uuid.uuid4()), "conversation_id": "c", "topic": "/control/agents/a/input",
            "instruction": "say", "input": "hi", **overrides}


def test_a_malformed_envelope_is_dropped_without_an_answer(redis_client: redis.Redis, key_prefix: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    sent = Recorder()
    handle, info = entry(redis_client, key_prefix, sent)
    assert handle.run("a", task(task_id="not a uuid")) == "dropped: malformed envelope"
    assert sent.sent == [] and info.processed == 1
    assert "malformed task envelope" in caplog.text


def test_a_validation_error_after_the_envelope_was_read_is_answered_as_an_unexpected_failure(
    redis_client: redis.Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # next.topic may be any publishable topic, but a forwarded envelope's topic is at most 1024 characters:
    # the forward fails validating after the LLM answered.
    wire = task(next={"topic": f"/control/agents/{'b' * 1100}/input", "instruction": None})
    sent = Recorder()
    handle, _ = entry(redis_client, key_prefix, sent)
    with caplog.at_level(logging.ERROR):
        result = handle.run("a", wire)
    assert result == "error internal_error published to /conversations/c/a"
    assert [body["error"]["code"] for _, body in sent.sent] == ["internal_error"]
    assert "unexpected failure while processing a task" in caplog.text
    assert "malformed task envelope" not in caplog.text


def test_a_task_for_an_agent_this_worker_does_not_serve_is_dropped(redis_client: redis.Redis,
                                                                  key_prefix: str) -> None:
    sent = Recorder()
    handle, _ = entry(redis_client, key_prefix, sent)
    assert handle.run("elsewhere", task()) == "dropped: unknown agent"
    assert sent.sent == []


def test_a_redis_failure_is_left_to_the_retry_policy(key_prefix: str) -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    handle, info = entry(unreachable, key_prefix, Recorder())
    with pytest.raises(redis.ConnectionError):
        handle.run("a", task())
    assert info.processed == 1
