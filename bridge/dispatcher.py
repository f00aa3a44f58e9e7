"""Turn received messages into queued tasks, one agent's messages in order, off the MQTT network thread.

A message is acknowledged to the broker only after its task is safely in Redis (or it was rejected), so
a bridge that dies or a Redis that is down loses nothing: the broker delivers the message again.

Under a backlog the messages waiting are taken in together: one round trip claims them all, each is
sent, one round trip confirms them all, then each is acknowledged, in the order received. Anything
out of the ordinary (a rejection, a claim to wait for, a failure) ends the batch before it, and that
message takes the one-at-a-time path with its retries.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import paho.mqtt.client as paho

from agent2389.config.agent import AgentConfig
from agent2389.logs import log_fields, span
from agent2389.mqtt import wait_for_puback
from agent2389.protocol.envelope import TaskEnvelope, TaskError
from agent2389.protocol.errors import ServiceUnavailableError
from agent2389.retry import INFRASTRUCTURE_ERRORS
from agent2389.state.ledger import DUPLICATE, NEW, PENDING, TaskLedger
from agent2389.state.stats import StatsRecorder
from agent2389.state.timeline import TaskEvent
from bridge.enqueue import Enqueuer
from bridge.inbox import Inbox
from bridge.intake import Accepted, Rejected, depth_error, examine

log = logging.getLogger("agent2389.bridge.intake")


class ClaimPendingError(ServiceUnavailableError):
    """Another bridge claimed this delivery and has not confirmed it yet: wait, never drop."""


PUBLISH_TIMEOUT_S = 10.0
# A message of a batch, its envelope and its delivery fingerprint.
Taken = tuple[paho.MQTTMessage, TaskEnvelope, str]


class Mailbox(Protocol):
    """The agent's MQTT side, as the dispatcher uses it (bridge/agent_link.py)."""

    agent: AgentConfig

    def ack(self, message: paho.MQTTMessage) -> None: ...

    def publish_error(self, topic: str, error: TaskError) -> paho.MQTTMessageInfo: ...


class Dispatcher:
    def __init__(self, link: Mailbox, inbox: Inbox, ledger: TaskLedger, enqueuer: Enqueuer,
                 stats: StatsRecorder) -> None:
        self._link = link
        self.inbox = inbox
        self._ledger = ledger
        self._enqueuer = enqueuer
        self._stats = stats
        # What this dispatcher's own retries of a message must not redo: deliveries it claimed but could
        # not enqueue yet (never wait on its own claim), and ones it enqueued but could not confirm.
        self._claimed: set[str] = set()
        self._enqueued: set[str] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"dispatch-{link.agent.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        self.inbox.close()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            messages, stop = self.inbox.take()
            for _ in messages:
                self._stats.task_received(self._link.agent.id)
            while messages:
                batch = len(messages) > 1 and not self._stopping.is_set()
                taken = self._take_in_batch(messages) if batch else 0
                if not taken:
                    self._handle_until_done(messages[0])
                    taken = 1
                messages = messages[taken:]
            if stop:
                return

    def _take_in_batch(self, messages: list[paho.MQTTMessage]) -> int:
        """Queue a leading run of ordinary new tasks together; returns how many messages it acknowledged
        (0: let the first one take the one-at-a-time path)."""
        run = self._leading_run(messages)
        if len(run) < 2:
            return 0
        try:
            run, claims = self._queue_together(run)
        except Exception as exc:
            # What was claimed or sent is remembered in _claimed and _enqueued; the one-at-a-time path
            # finishes each message from there, with its retries (and drops one that cannot be queued).
            log.warning("cannot queue a batch of tasks for %s (%s); one at a time", self._link.agent.id,
                        type(exc).__name__, exc_info=not isinstance(exc, INFRASTRUCTURE_ERRORS))
            return 0
        for (message, _, _), claim in zip(run, claims, strict=False):
            if claim == DUPLICATE:
                self._reject(message, Rejected("duplicate", "discarded a duplicate delivery of a task"))
            else:
                self._link.ack(message)
        return len(run)

    def _leading_run(self, messages: list[paho.MQTTMessage]) -> list[Taken]:
        """The messages, from the first, that are accepted new tasks within the depth limit, each once."""
        agent = self._link.agent
        run: list[Taken] = []
        seen: set[str] = set()
        for message in messages:
            decision = examine(agent, message.topic, message.payload, bool(message.retain))
            if not isinstance(decision, Accepted) or depth_error(agent, decision.envelope) is not None:
                break
            fingerprint = decision.envelope.pipeline_fingerprint()
            # Twice in one batch, or left half done by a failed attempt: one at a time sorts it out.
            if fingerprint in self._claimed or fingerprint in self._enqueued or fingerprint in seen:
                break
            seen.add(fingerprint)
            run.append((message, decision.envelope, fingerprint))
        return run

    def _queue_together(self, run: list[Taken]) -> tuple[list[Taken], list[str]]:
        """Claim, send and confirm the run's new tasks; returns the part of the run claimed, and its claims."""
        claims = self._ledger.claim_many([fingerprint for *_, fingerprint in run])
        # One being queued by another bridge waits, one at a time; the ones after it were not claimed.
        run = run[:len(claims) - 1] if claims[-1] == PENDING else run
        new = [(envelope, f) for (_, envelope, f), claim in zip(run, claims, strict=False) if claim == NEW]
        self._claimed.update(f for _, f in new)
        self._enqueue_many(new)
        self._ledger.confirm_many([f for _, f in new])
        self._enqueued.difference_update(f for _, f in new)
        return run, claims

    def _handle_until_done(self, message: paho.MQTTMessage) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                self.handle(message)
                return
            except INFRASTRUCTURE_ERRORS as exc:
                # Redis is unreachable: keep the message unacknowledged and try again; the broker holds
                # the rest back once the receive window is full.
                log.warning("cannot queue a task for %s yet (%s); retrying in %.1f s", self._link.agent.id,
                            type(exc).__name__, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                # A defect, not bad input (examine() rejects that): counted, so /metrics shows it.
                log.exception("unexpected failure while taking in a message for %s; dropping it",
                              self._link.agent.id)
                self._stats.task_dropped(self._link.agent.id)
                self._link.ack(message)
                return

    def handle(self, message: paho.MQTTMessage) -> None:
        agent = self._link.agent
        decision = examine(agent, message.topic, message.payload, bool(message.retain))
        if isinstance(decision, Accepted):
            envelope = decision.envelope
            with span("task_intake", task_id=envelope.task_id, agent_id=agent.id,
                      conversation_id=envelope.conversation_id):
                self._accept(message, decision)
            return
        self._reject(message, decision)

    def _accept(self, message: paho.MQTTMessage, decision: Accepted) -> None:
        agent, envelope = self._link.agent, decision.envelope
        fingerprint = envelope.pipeline_fingerprint()
        if fingerprint not in self._enqueued:
            if fingerprint not in self._claimed:
                claim = self._ledger.claim(fingerprint)
                if claim == DUPLICATE:
                    self._reject(message, Rejected("duplicate", "discarded a duplicate delivery of a task"))
                    return
                if claim == PENDING:
                    raise ClaimPendingError("another delivery of this task is being queued")
                self._claimed.add(fingerprint)
            too_deep = depth_error(agent, envelope)
            if too_deep is not None:
                self._reject(message, too_deep)
                self._ledger.finish(fingerprint, failed=True)
                self._claimed.discard(fingerprint)
                return
            self._enqueue(fingerprint, envelope)
        self._ledger.confirm(fingerprint)
        self._enqueued.discard(fingerprint)
        self._link.ack(message)

    def _enqueue(self, fingerprint: str, envelope: TaskEnvelope) -> None:
        agent_id = self._link.agent.id
        started = time.perf_counter()
        try:
            celery_id = self._enqueuer.enqueue(agent_id, envelope)
        except Exception:
            self._ledger.unclaim(fingerprint)
            self._claimed.discard(fingerprint)
            raise
        self._queued(fingerprint, envelope, celery_id, started)

    def _enqueue_many(self, new: list[tuple[TaskEnvelope, str]]) -> None:
        agent_id = self._link.agent.id
        started = time.perf_counter()

        def queued(position: int, celery_id: str) -> None:
            envelope, fingerprint = new[position]
            with span("task_intake", task_id=envelope.task_id, agent_id=agent_id,
                      conversation_id=envelope.conversation_id):
                self._queued(fingerprint, envelope, celery_id, started, batch=len(new))

        # On a failure the tasks not sent stay claimed by this dispatcher (in _claimed): the one-at-a-time
        # path sends each under that claim, as it does after a failed send of its own.
        self._enqueuer.enqueue_many(agent_id, [envelope for envelope, _ in new], queued)

    def _queued(self, fingerprint: str, envelope: TaskEnvelope, celery_id: str, started: float,
                **fields: int) -> None:
        """The task is in Redis: no longer only claimed, and its timeline and log say so."""
        self._claimed.discard(fingerprint)
        self._enqueued.add(fingerprint)
        self._stats.task_event(envelope.task_id, self._link.agent.id, TaskEvent.QUEUED, celery_id=celery_id,
                               conversation_id=envelope.conversation_id)
        log.info("task queued", extra=log_fields(depth=envelope.depth, **fields,
                                                 enqueue_ms=round((time.perf_counter() - started) * 1000, 2)))

    def _reject(self, message: paho.MQTTMessage, decision: Rejected) -> None:
        self._stats.task_rejected(self._link.agent.id, decision.reason)
        level = logging.DEBUG if decision.reason in ("retained", "duplicate") else logging.WARNING
        log.log(level, decision.log_message, extra=log_fields(reason=decision.reason, topic=message.topic))
        if decision.reply is not None:
            topic, error = decision.reply
            info = self._link.publish_error(topic, error)
            # paho resends it after a reconnect: wait for that rather than publishing it twice.
            while not wait_for_puback(info, PUBLISH_TIMEOUT_S):
                if self._stopping.is_set():
                    self._stats.mqtt_published(failed=True)
                    return
            self._stats.mqtt_published()
        self._link.ack(message)
