"""Scenario 8: fuzzing the intake. No input message crashes or hangs anything; every reply is well-formed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent2389.config import AgentConfig
from agent2389.keys import Keys
from agent2389.ledger import TaskLedger
from agent2389.stats import StatsRecorder
from agent2389.topics import canonicalize
from bridge.intake import Accepted, Rejected, depth_error, examine
from tests.reliability.fuzz_payloads import payloads
from tests.reliability.reply_checks import (
    assert_conversation_topic,
    assert_publishable_topic,
    assert_well_formed_answer,
)
from tests.reliability.results import FULL
from workers.llm.echo import EchoRunner
from workers.processing import Deps, process

AGENT = AgentConfig.model_validate({"agent": {"id": "fuzz"}, "llm": {"provider": "echo", "model": "echo"}})
SINK = AgentConfig.model_validate({"agent": {"id": "fuzz-sink"}, "llm": {"provider": "echo", "model": "echo"}})
INPUT, SINK_INPUT = "/control/agents/fuzz/input", "/control/agents/fuzz-sink/input"
EXAMPLES = 5000 if FULL else 400


Published = list[tuple[str, str]]


@pytest.fixture
def worker_deps(redis_url: str, key_prefix: str) -> Iterator[Callable[[], tuple[Deps, Published]]]:
    """The worker's dependencies with a ledger of its own per example: hypothesis repeats task ids."""
    client = redis.Redis.from_url(redis_url)

    def fresh() -> tuple[Deps, Published]:
        published: Published = []
        keys = Keys(f"{key_prefix}:{uuid.uuid4().hex[:8]}")
        deps = Deps(TaskLedger(client, keys), StatsRecorder(client, keys), {AGENT.id: EchoRunner(AGENT)},
                    lambda topic, payload: published.append((topic, payload)), [])
        return deps, published

    yield fresh
    client.close()


def task(**fields: Any) -> bytes:
    body = {"task_id": str(uuid.uuid4()), "conversation_id": "c1", "topic": INPUT, "input": {}, **fields}
    return json.dumps(body).encode()


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


# What the fuzz found once, kept as fixed cases: each was accepted, then lost without an answer.
FOUND = [
    task(input={"deep": nested(300)}),
    task(conversation_id="c\ud800"),
    task(input={"text": "x\udfff"}),
    json.dumps({"task_id": str(uuid.uuid4()), "conversation_id": "c1", "topic": INPUT, "input": {},
                "\ud800": None}).encode(),
    task(instruction="x" * 262_000, next={"topic": SINK_INPUT, "instruction": None, "input": None, "next": None}),
]


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(payload=payloads(AGENT.id, SINK_INPUT), retained=st.integers(0, 9).map(lambda n: n == 0),
       topic=st.sampled_from([INPUT, INPUT, "control/agents/fuzz/input/", "/control/agents/other/input"]))
@example(payload=FOUND[0], retained=False, topic=INPUT)
@example(payload=FOUND[1], retained=False, topic=INPUT)
@example(payload=FOUND[2], retained=False, topic=INPUT)
@example(payload=FOUND[3], retained=False, topic=INPUT)
@example(payload=FOUND[4], retained=False, topic=INPUT)
def test_no_input_message_escapes_the_intake_as_a_crash_a_loss_or_a_malformed_reply(
    worker_deps: Callable[[], tuple[Deps, Published]], payload: bytes, retained: bool, topic: str
) -> None:
    decision = examine(AGENT, topic, payload, retained)
    if isinstance(decision, Rejected):
        assert_rejection(decision)
        return
    envelope = decision.envelope
    too_deep = depth_error(AGENT, envelope)
    if too_deep is not None:
        assert_rejection(too_deep)
        return
    # The bridge enqueues the envelope as JSON; the worker reads it back and answers exactly once.
    wire = json.loads(json.dumps(envelope.to_wire()))
    deps, published = worker_deps()
    process(AGENT, wire, deps)
    assert len(published) == 1, published
    [(out_topic, out_payload)] = published
    assert_publishable_topic(out_topic)
    if envelope.next is None or out_topic != canonicalize(SINK_INPUT):
        assert_conversation_topic(out_topic, AGENT.id)
        body = assert_well_formed_answer(out_payload, envelope.task_id)
        # A result that cannot be forwarded is reported to the conversation, never dropped.
        assert envelope.next is None or "error" in body
    else:
        forwarded = examine(SINK, out_topic, out_payload.encode("utf-8"), False)
        assert isinstance(forwarded, Accepted), forwarded
        assert forwarded.envelope.task_id == envelope.task_id


def assert_rejection(decision: Rejected) -> None:
    assert decision.reason and decision.log_message
    if decision.reply is not None:
        topic, error = decision.reply
        assert_conversation_topic(topic, AGENT.id)
        assert_well_formed_answer(error.model_dump_json())


def fresh_task_id(document: Any) -> Any:
    if isinstance(document, dict) and isinstance(document.get("task_id"), str):
        return {**document, "task_id": str(uuid.uuid4())}
    return document
