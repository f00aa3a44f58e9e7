import json
import uuid
from dataclasses import replace
from typing import Any

import pytest
import redis

from agent2389.config.agent import AgentConfig
from agent2389.protocol.envelope import TaskEnvelope
from agent2389.protocol.errors import LLMError
from agent2389.state.keys import Keys
from agent2389.state.ledger import TaskLedger
from agent2389.state.stats import StatsRecorder
from tests.workers.published import Recorder
from workers.llm import TaskRequest
from workers.llm.echo import EchoRunner
from workers.processing import MAX_ATTEMPTS, Deps, cancel, describe, process

AGENT = AgentConfig.model_validate({"agent": {"id": "a"}, "llm": {"provider": "echo"}})


class FailingRunner:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def verify(self) -> None: ...

    def close(self) -> None: ...

    def run(self, request: TaskRequest) -> str:
        self.calls += 1
        raise self.exc


def deps(redis_client: redis.Redis, key_prefix: str, runner: Any, publish: Recorder) -> Deps:
    keys = Keys(key_prefix)
    return Deps(TaskLedger(redis_client, keys), StatsRecorder(redis_client, keys), {"a": runner}, publish,
                ["sk-secret-value-123"])


def task(**overrides: Any) -> dict[str, Any]:
    return {"task_id": str(uuid.uuid4()), "conversation_id": "c", "topic": "/control/agents/a/input",
            "instruction": "say", "input": "hi", **overrides}


def test_the_answer_is_published_to_the_conversation_topic(redis_client: redis.Redis, key_prefix: str) -> None:
    sent = Recorder()
    wire = task()
    process(AGENT, wire, deps(redis_client, key_prefix, EchoRunner(AGENT), sent))
    assert sent.sent == [("/conversations/c/a", {"task_id": wire["task_id"], "response": "say: hi"})]


def test_with_next_the_answer_becomes_the_next_agents_input(redis_client: redis.Redis, key_prefix: str) -> None:
    sent = Recorder()
    wire = task(next={"topic": "control/agents/b/input/", "instruction": "polish", "input": None, "next": None})
    process(AGENT, wire, deps(redis_client, key_prefix, EchoRunner(AGENT), sent))
    [(topic, body)] = sent.sent
    assert topic == "/control/agents/b/input"
    assert body["input"] == "say: hi" and body["instruction"] == "polish" and body["task_id"] == wire["task_id"]


def test_a_failure_publishes_one_sanitized_error_with_its_code(redis_client: redis.Redis, key_prefix: str) -> None:
    sent = Recorder()
    runner = FailingRunner(LLMError("401 from https://api.example.com with key sk-secret-value-123"))
    process(AGENT, task(), deps(redis_client, key_prefix, runner, sent))
    [(topic, body)] = sent.sent
    assert topic == "/conversations/c/a" and body["error"]["code"] == "llm_error"
    assert "sk-secret" not in body["error"]["message"] and "example.com" not in body["error"]["message"]


def test_a_failed_tasks_timeline_shows_the_error_text_that_was_published(redis_client: redis.Redis,
                                                                          key_prefix: str) -> None:
    sent = Recorder()
    wire = task()
    runner = FailingRunner(LLMError("401 from https://api.example.com with key sk-secret-value-123"))
    process(AGENT, wire, deps(redis_client, key_prefix, runner, sent))
    events = [json.loads(e) for e in redis_client.lrange(Keys(key_prefix).task_timeline(wire["task_id"]), 0, -1)]
    [failed] = [e for e in events if e["event"] == "failed"]
    assert failed["message"] == sent.sent[0][1]["error"]["message"] and failed["error_code"] == "llm_error"


def test_an_unexpected_exception_is_an_internal_error(redis_client: redis.Redis, key_prefix: str) -> None:
    sent = Recorder()
    process(AGENT, task(), deps(redis_client, key_prefix, FailingRunner(ZeroDivisionError("x")), sent))
    assert sent.sent[0][1]["error"] == {"code": "internal_error", "message": "the agent failed unexpectedly"}


def test_a_redelivery_after_the_answer_was_published_is_skipped(redis_client: redis.Redis, key_prefix: str) -> None:
    sent = Recorder()
    wire = task()
    d = deps(redis_client, key_prefix, EchoRunner(AGENT), sent)
    process(AGENT, wire, d)
    assert process(AGENT, wire, d) is None
    assert len(sent.sent) == 1


def test_a_retry_publishes_the_kept_outcome_without_calling_the_llm(redis_client: redis.Redis,
                                                                   key_prefix: str) -> None:
    wire = task()
    failing_publish: list[int] = []

    def broker_down(topic: str, payload: str) -> None:
        failing_publish.append(1)
        raise ConnectionError("broker down")

    runner = FailingRunner(LLMError("boom"))
    with pytest.raises(ConnectionError):
        process(AGENT, wire, replace(deps(redis_client, key_prefix, runner, Recorder()), publish=broker_down))
    sent = Recorder()
    process(AGENT, wire, deps(redis_client, key_prefix, runner, sent))
    assert runner.calls == 1 and len(sent.sent) == 1 and failing_publish == [1]


def test_a_delivery_that_keeps_crashing_its_worker_ends_in_an_internal_error(redis_client: redis.Redis,
                                                                            key_prefix: str) -> None:
    wire = task()
    ledger = TaskLedger(redis_client, Keys(key_prefix))
    fingerprint = TaskEnvelope.model_validate(wire).pipeline_fingerprint()
    for _ in range(MAX_ATTEMPTS):
        ledger.begin(fingerprint)
    sent = Recorder()
    runner = FailingRunner(LLMError("never called"))
    process(AGENT, wire, deps(redis_client, key_prefix, runner, sent))
    assert runner.calls == 0 and sent.sent[0][1]["error"]["code"] == "internal_error"


class FlakyLedger(TaskLedger):
    """Redis fails the first ``failures`` attempts to record a finished task."""

    def __init__(self, client: redis.Redis, keys: Keys, failures: int) -> None:
        super().__init__(client, keys)
        self.failures = failures

    def finish(self, fingerprint: str, failed: bool) -> None:
        if self.failures:
            self.failures -= 1
            raise redis.ConnectionError("Redis went away")
        super().finish(fingerprint, failed)


def test_a_published_answer_is_recorded_once_redis_is_back_instead_of_being_handed_back(
    redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.processing.FINISH_RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    sent = Recorder()
    ledger = FlakyLedger(redis_client, Keys(key_prefix), failures=2)
    wire = task()
    process(AGENT, wire, replace(deps(redis_client, key_prefix, EchoRunner(AGENT), sent), ledger=ledger))
    assert len(sent.sent) == 1
    assert ledger.state(TaskEnvelope.model_validate(wire).pipeline_fingerprint()) == "done"


def test_a_redis_outage_longer_than_the_retries_hands_the_delivery_back(
    redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.processing.FINISH_RETRY_DELAYS_S", (0.01,))
    ledger = FlakyLedger(redis_client, Keys(key_prefix), failures=2)
    with pytest.raises(redis.ConnectionError):
        process(AGENT, task(), replace(deps(redis_client, key_prefix, EchoRunner(AGENT), Recorder()), ledger=ledger))


def test_a_revoked_task_gets_one_cancelled_error_and_the_llm_is_never_called(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    sent = Recorder()
    runner = FailingRunner(AssertionError("the LLM was called"))
    wire = task()
    outcome = cancel(AGENT, wire, deps(redis_client, key_prefix, runner, sent))
    assert sent.sent == [("/conversations/c/a", {"task_id": wire["task_id"], "error": {
        "code": "internal_error", "message": "cancelled by an operator"}})]
    assert runner.calls == 0
    assert describe(outcome) == "error internal_error published to /conversations/c/a"


def test_revoking_a_task_already_answered_publishes_nothing_more(redis_client: redis.Redis, key_prefix: str) -> None:
    sent = Recorder()
    wire = task()
    process(AGENT, wire, deps(redis_client, key_prefix, EchoRunner(AGENT), sent))
    outcome = cancel(AGENT, wire, deps(redis_client, key_prefix, EchoRunner(AGENT), sent))
    assert len(sent.sent) == 1 and "response" in sent.sent[0][1]
    assert outcome is None and describe(outcome) == "duplicate: answered before"


def test_a_redelivery_of_a_task_whose_worker_died_after_answering_ends_completed_and_not_in_progress(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    wire = task()
    # The dead worker: it started the task and published the answer, but its finish never reached the stats.
    StatsRecorder(redis_client, keys).task_started("a", wire["task_id"], "c", 1)
    ledger = TaskLedger(redis_client, keys)
    fingerprint = TaskEnvelope.model_validate(wire).pipeline_fingerprint()
    ledger.begin(fingerprint)
    ledger.finish(fingerprint, failed=False)
    sent = Recorder()
    assert process(AGENT, wire, deps(redis_client, key_prefix, EchoRunner(AGENT), sent)) is None
    assert sent.sent == []
    events = [json.loads(e) for e in redis_client.lrange(keys.task_timeline(wire["task_id"]), 0, -1)]
    assert [e["event"] for e in events] == ["started", "completed"]
    assert redis_client.zcard(keys.in_flight()) == 0


def test_a_redelivery_to_the_worker_that_just_answered_is_recorded_once(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    wire = task()
    # One worker's recorder, writing in the background: its finish may still be queued at the redelivery.
    stats = StatsRecorder(redis_client, keys, background=True)
    worker = Deps(TaskLedger(redis_client, keys), stats, {"a": EchoRunner(AGENT)}, Recorder(), [])
    process(AGENT, wire, worker)
    assert process(AGENT, wire, worker) is None
    assert stats.flush()
    events = [json.loads(e)["event"] for e in redis_client.lrange(keys.task_timeline(wire["task_id"]), 0, -1)]
    assert events == ["started", "completed"]
    assert redis_client.hget(keys.agent_stats("a"), "tasks_completed") == "1"


class Events:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def emit(self, topic: str, payload: str) -> None:
        self.kinds.append(json.loads(payload)["event_type"])


def test_a_task_tells_its_start_and_its_end_as_progress_events(redis_client: redis.Redis, key_prefix: str) -> None:
    answered, failed = Events(), Events()
    process(AGENT, task(), replace(deps(redis_client, key_prefix, EchoRunner(AGENT), Recorder()), progress=answered))
    process(AGENT, task(), replace(deps(redis_client, key_prefix, FailingRunner(LLMError("down")), Recorder()),
                                   progress=failed))
    assert answered.kinds == ["TaskStart", "TaskComplete"]
    assert failed.kinds == ["TaskStart", "TaskError"]
