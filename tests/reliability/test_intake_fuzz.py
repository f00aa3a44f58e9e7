"""Scenario 8: fuzzing the intake. No input message crashes or hangs anything; every reply is well-formed."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent2389.config.agent import AgentConfig
from agent2389.config.files import load_agents
from agent2389.protocol.envelope import TaskEnvelope, TaskError
from agent2389.protocol.topics import canonicalize, conversation_topic, input_topic
from agent2389.state.keys import Keys
from agent2389.state.ledger import TaskLedger
from agent2389.state.stats import StatsRecorder
from bridge.intake import Accepted, Rejected, depth_error, examine
from tests.reliability.conftest import Scale, StackFactory
from tests.reliability.fuzz_payloads import payloads
from tests.reliability.peer import LoadPeer
from tests.reliability.reply_checks import (
    assert_conversation_topic,
    assert_publishable_topic,
    assert_well_formed_answer,
)
from tests.reliability.results import FULL, record
from workers.llm import TaskRequest
from workers.llm.echo import EchoRunner, echo_text
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
    task(conversation_id="line\nbreak"),
    task(next={"topic": "/control/agents/x\u0085/input", "instruction": None, "input": None, "next": None}),
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
@example(payload=FOUND[5], retained=False, topic=INPUT)
@example(payload=FOUND[6], retained=False, topic=INPUT)
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


def expected_messages(agent: AgentConfig, sink_input: str, payload: bytes,
                      seen: set[str]) -> list[tuple[str, str | None, str]] | None:
    """(topic, task id, kind) of every message the system must publish for ``payload``; None: do not send it.

    A task accepted twice is answered once (a duplicate), which needs no fuzzing here: those are not sent.
    """
    decision = examine(agent, input_topic(agent.id), payload, False)
    if isinstance(decision, Rejected):
        return [] if decision.reply is None else [reply_key(decision.reply)]
    envelope = decision.envelope
    if envelope.pipeline_fingerprint() in seen:
        return None
    seen.add(envelope.pipeline_fingerprint())
    too_deep = depth_error(agent, envelope)
    if too_deep is not None:
        assert too_deep.reply is not None
        return [reply_key(too_deep.reply)]
    answer_topic = conversation_topic(envelope.conversation_id, agent.id)
    if envelope.next is None:
        return [(answer_topic, envelope.task_id, "response")]
    if len(json.dumps(envelope.forwarded(echo_text_of(agent, envelope)).to_wire())) > agent.agent.max_message_bytes:
        return [(answer_topic, envelope.task_id, "internal_error")]
    return [(canonicalize(sink_input), envelope.task_id, "forward")]


def reply_key(reply: tuple[str, TaskError]) -> tuple[str, str | None, str]:
    topic, error = reply
    return topic, error.task_id, error.error.code.value


def echo_text_of(agent: AgentConfig, envelope: TaskEnvelope) -> str:
    request = TaskRequest(agent=agent, task_id=envelope.task_id, conversation_id=envelope.conversation_id,
                          instruction=envelope.instruction, input=envelope.input)
    return echo_text(request)


def received_key(topic: str, body: Any) -> tuple[str, str | None, str]:
    if topic.endswith("/input"):
        return topic, body.get("task_id"), "forward"
    assert_well_formed_answer(json.dumps(body))
    return topic, body["task_id"], "response" if "response" in body else body["error"]["code"]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_a_running_bridge_and_worker_take_a_fuzz_run_and_still_answer_a_valid_task(
    make_stack: StackFactory, peers: Callable[..., LoadPeer], redis_url: str, mqtt_url: str, unique_id: str,
    scale: Scale,
) -> None:
    agent_id, sink = f"fuzzed-{unique_id}", f"sink-{unique_id}"
    sink_input = f"/control/agents/{sink}/input"
    collected: list[bytes] = []

    @settings(max_examples=scale.fuzz_wire_messages, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(payloads(agent_id, sink_input))
    def collect(payload: bytes) -> None:
        collected.append(payload)

    collect()
    stack = make_stack(redis_url, mqtt_url, {agent_id: ""})
    [agent] = load_agents(stack.config_dir)
    peer = peers(mqtt_url)
    peer.follow(f"/conversations/+/{agent_id}")
    peer.follow(sink_input)
    peer.follow(f"/control/agents/{agent_id}/status")
    stack.worker("--concurrency", "10")
    stack.bridge()
    peer.wait_for_status(agent_id, "available", timeout_s=30)
    received: list[tuple[str, Any]] = []
    peer.on_any = lambda topic, body: received.append((topic, body))

    expected: list[tuple[str, str | None, str]] = []
    seen: set[str] = set()
    sent = 0
    for i, payload in enumerate(collected):
        if i % 50 == 0:
            # Published retained: the bridge subscribes with Retain As Published, sees the flag and ignores
            # the message (PROTOCOL.md §5 step 2), whatever it holds; nothing is published for it.
            peer.send_raw(input_topic(agent_id), payload, retain=True)
            sent += 1
            continue
        wanted = expected_messages(agent, sink_input, payload, seen)
        if wanted is None:
            continue
        expected.extend(wanted)
        peer.send_raw(input_topic(agent_id), payload)
        sent += 1
    peer.send_raw(input_topic(agent_id), b"", retain=True)  # clears what the retained sends left behind
    peer.flush(timeout_s=120)
    deadline = time.monotonic() + (120 if scale.full else 60)
    while len(received) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(scale.quiet_s)
    got = Counter(received_key(topic, body) for topic, body in received)
    replies = len(received)
    valid = peer.send(agent_id, f"after-{unique_id}", "still there?")
    answered = peer.wait_for_answers([valid["task_id"]], timeout_s=15)
    record("8 intake fuzz over MQTT", sent=sent, answered=replies, duplicated=0,
           errors=sum(1 for key in expected if key[2] not in ("response", "forward")), recovery_s=None,
           payloads_generated=len(collected), replies_expected=len(expected), in_process_examples=EXAMPLES)
    assert got == Counter(expected), f"missing: {Counter(expected) - got}; unexpected: {got - Counter(expected)}"
    assert [p.name for p in stack.processes if p.popen.poll() is not None] == []
    assert answered, "no answer to a valid task after the fuzz run"
