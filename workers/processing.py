"""Steps 8 and 9 of PROTOCOL.md §5 for one delivery, as a plain function with its dependencies passed in.

Exactly one message leaves for every task: the answer (to the conversation topic), the forwarded
envelope (to ``next.topic``) or one error. The outcome is kept in Redis before it is published, so a
delivery that is retried after a crash publishes the same outcome again instead of calling the LLM twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis
from pydantic import ValidationError

from agent2389.config.agent import AgentConfig
from agent2389.logs import log_fields, span
from agent2389.protocol.envelope import TaskEnvelope, TaskError, TaskResponse
from agent2389.protocol.errors import Agent2389Error, ErrorCode, MalformedEnvelopeError
from agent2389.protocol.sanitize import sanitize_error_message
from agent2389.protocol.topics import canonicalize, conversation_topic
from agent2389.retry import INFRASTRUCTURE_ERRORS
from agent2389.state.ledger import TaskLedger
from agent2389.state.stats import StatsRecorder
from workers.llm import Runner, TaskRequest
from workers.progress import NO_SINK, ProgressSink, TaskProgress
from workers.routing import Router, applies

log = logging.getLogger("agent2389.workers.task")
# A delivery that started this many times without finishing is taken to crash its worker.
MAX_ATTEMPTS = 3
FINISH_RETRY_DELAYS_S = (0.1, 0.3, 1.0, 2.0, 5.0)
CANCELLED = "cancelled by an operator"


@dataclass(frozen=True)
class Outcome:
    topic: str
    payload: str
    error_code: str | None = None
    # The published (already sanitized) error text, for the task's timeline.
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_code is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Deps:
    ledger: TaskLedger
    stats: StatsRecorder
    runners: Mapping[str, Runner]
    publish: Callable[[str, str], None]
    secrets: list[str]
    progress: ProgressSink = NO_SINK
    router: Router | None = None


def process(agent: AgentConfig, wire: dict[str, Any], deps: Deps) -> Outcome | None:
    """Run one delivery to completion; None when it was a duplicate of a finished one."""
    return _deliver(agent, _parse(wire), deps, lambda envelope, attempts: _reported(agent, envelope, deps, attempts))


def cancel(agent: AgentConfig, wire: dict[str, Any], deps: Deps) -> Outcome | None:
    """End a delivery an operator revoked before it started with its one error; None when it was answered
    already (revoking it changed nothing)."""
    return _deliver(agent, _parse(wire), deps, lambda envelope, attempts: _error(
        agent, envelope, ErrorCode.INTERNAL_ERROR, CANCELLED))


def describe(outcome: Outcome | None) -> str:
    """One line for Celery's task events, which Flower shows as the task's result: never the task's content."""
    if outcome is None:
        return "duplicate: answered before"
    if outcome.failed:
        return f"error {outcome.error_code} published to {outcome.topic}"
    return f"published to {outcome.topic}"


def _parse(wire: dict[str, Any]) -> TaskEnvelope:
    try:
        return TaskEnvelope.model_validate(wire)
    except ValidationError as exc:
        # Only here is a ValidationError bad input; one raised later is a defect, answered as one.
        raise MalformedEnvelopeError(f"not a task envelope ({exc.error_count()} error(s))") from exc


def _deliver(agent: AgentConfig, envelope: TaskEnvelope, deps: Deps,
             decide: Callable[[TaskEnvelope, int], Outcome]) -> Outcome | None:
    fingerprint = envelope.pipeline_fingerprint()
    with span("task_processing", task_id=envelope.task_id, agent_id=agent.id,
              conversation_id=envelope.conversation_id):
        started = time.perf_counter()
        visit = deps.ledger.begin(fingerprint)
        if visit.finished:
            log.info("skipped a delivery of a task already answered", extra=log_fields(attempts=visit.attempts))
            deps.stats.task_settled(agent.id, envelope.task_id)
            return None
        if visit.outcome is not None:
            outcome = Outcome.from_json(visit.outcome)
            log.info("publishing the outcome kept from an earlier attempt")
        else:
            outcome = _decided(agent, envelope, decide, visit.attempts)
            deps.ledger.keep_outcome(fingerprint, outcome.to_json())
        deps.publish(outcome.topic, outcome.payload)
        _finish(deps.ledger, fingerprint, outcome.failed)
        duration_s = time.perf_counter() - started
        deps.stats.task_finished(agent.id, envelope.task_id, duration_s, outcome.error_code,
                                 message=outcome.error_message)
        deps.stats.mqtt_published()
        log.log(logging.WARNING if outcome.failed else logging.INFO,
                "task failed" if outcome.failed else "task completed",
                extra=log_fields(duration_ms=round(duration_s * 1000, 3), error_code=outcome.error_code,
                                 published_to=outcome.topic, attempts=visit.attempts))
        return outcome


def _finish(ledger: TaskLedger, fingerprint: str, failed: bool) -> None:
    """Record the outcome as published, waiting out a short Redis outage.

    The answer is out: handing the delivery back now would publish it a second time, so a failing write
    is retried for a few seconds (well within the lease) before the worker gives up on it.
    """
    for delay_s in (*FINISH_RETRY_DELAYS_S, None):
        try:
            ledger.finish(fingerprint, failed=failed)
            return
        except redis.RedisError as exc:
            if delay_s is None:
                raise
            log.warning("could not record a published outcome (%s); trying again in %.1f s", type(exc).__name__,
                        delay_s)
            time.sleep(delay_s)


def _decided(agent: AgentConfig, envelope: TaskEnvelope, decide: Callable[[TaskEnvelope, int], Outcome],
             attempts: int) -> Outcome:
    """What ``decide`` made of the task; an unexpected failure in it is answered too, with one error."""
    try:
        return decide(envelope, attempts)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception:
        log.exception("unexpected failure while processing a task")
        return _error(agent, envelope, ErrorCode.INTERNAL_ERROR, "the agent failed unexpectedly")


def _reported(agent: AgentConfig, envelope: TaskEnvelope, deps: Deps, attempts: int) -> Outcome:
    """``_decide``, with its start and end told as progress events (PROTOCOL.md §10)."""
    progress = TaskProgress(deps.progress, agent.id, envelope.task_id, envelope.conversation_id, deps.secrets)
    progress.task_start(envelope.input, attempt=attempts)
    started = time.perf_counter()
    outcome = _decide(agent, envelope, deps, attempts, progress)
    if outcome.failed:
        progress.task_error(time.perf_counter() - started, str(outcome.error_code), outcome.error_message or "")
    else:
        progress.task_complete(time.perf_counter() - started, outcome.topic, outcome.payload)
    return outcome


def _decide(agent: AgentConfig, envelope: TaskEnvelope, deps: Deps, attempts: int,
            progress: TaskProgress) -> Outcome:
    deps.stats.task_started(agent.id, envelope.task_id, envelope.conversation_id, envelope.depth)
    if attempts > MAX_ATTEMPTS:
        return _error(agent, envelope, ErrorCode.INTERNAL_ERROR,
                      f"the task was started {attempts - 1} times and never finished; giving up")
    request = TaskRequest(agent=agent, task_id=envelope.task_id, conversation_id=envelope.conversation_id,
                          instruction=envelope.instruction, input=envelope.input, progress=progress)
    try:
        if deps.router is not None and applies(agent, envelope):
            # Step 8 and the routing decision of a v2 workflow (PROTOCOL.md §9): forward or complete.
            routed = deps.router.work(agent, envelope, deps.runners[agent.id], request)
            return Outcome(routed.topic, routed.payload)
        text = deps.runners[agent.id].run(request)
    except Agent2389Error as exc:
        log.warning("task step failed: %s", type(exc).__name__, exc_info=True)
        return _error(agent, envelope, exc.code, sanitize_error_message(str(exc), deps.secrets))
    except Exception:
        log.exception("unexpected failure while processing a task")
        return _error(agent, envelope, ErrorCode.INTERNAL_ERROR, "the agent failed unexpectedly")
    if envelope.next is not None:
        forwarded = envelope.forwarded(text)
        payload, limit = json.dumps(forwarded.to_wire()), agent.agent.max_message_bytes
        if len(payload) > limit:
            # The next agent would drop it unanswered (PROTOCOL.md §5 step 3): tell the conversation instead.
            return _error(agent, envelope, ErrorCode.INTERNAL_ERROR, f"the result is too large to forward to the "
                          f"next agent ({len(payload)} bytes; the limit is {limit})")
        return Outcome(canonicalize(forwarded.topic), payload)
    response = TaskResponse(task_id=envelope.task_id, response=text)
    return Outcome(conversation_topic(envelope.conversation_id, agent.id), response.model_dump_json())


def _error(agent: AgentConfig, envelope: TaskEnvelope, code: ErrorCode, message: str) -> Outcome:
    error = TaskError.of(code, sanitize_error_message(message), envelope.task_id)
    return Outcome(conversation_topic(envelope.conversation_id, agent.id), error.model_dump_json(), code.value,
                   error.error.message)
