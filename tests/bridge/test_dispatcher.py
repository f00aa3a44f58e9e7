"""The dispatcher on the real Redis ledger, with the MQTT side and the queue played by recorders."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
import redis

from agent2389.config.agent import AgentConfig
from agent2389.protocol.envelope import TaskEnvelope
from agent2389.state.keys import Keys
from agent2389.state.ledger import PENDING, TaskLedger
from agent2389.state.stats import StatsRecorder
from bridge.dispatcher import Dispatcher
from bridge.inbox import Inbox

AGENT = AgentConfig.model_validate({"agent": {"id": "a"}})


class Published:
    def __init__(self) -> None:
        self.rc = paho.MQTT_ERR_SUCCESS

    def wait_for_publish(self, timeout: float) -> None: ...

    def is_published(self) -> bool:
        return True


class FakeLink:
    agent = AGENT

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.errors: list[tuple[str, Any]] = []
        self._acked_more = threading.Condition()

    def ack(self, message: paho.MQTTMessage) -> None:
        with self._acked_more:
            self.acked.append(message.mid)
            self._acked_more.notify_all()

    def wait_for_acks(self, count: int, timeout_s: float = 10) -> None:
        with self._acked_more:
            assert self._acked_more.wait_for(lambda: len(self.acked) >= count, timeout_s), (
                f"{count} message(s) not acknowledged within {timeout_s} s: {self.acked}")

    def publish_error(self, topic: str, error: Any) -> Published:
        self.errors.append((topic, error))
        return Published()


class FlakyEnqueuer:
    """Fails ``failures`` times in a row, after ``succeeding_first`` successful sends."""

    def __init__(self, failures: int, succeeding_first: int = 0) -> None:
        self.failures = failures
        self.succeeding_first = succeeding_first
        self.sent: list[str] = []

    def enqueue(self, agent_id: str, envelope: TaskEnvelope) -> str:
        if self.failures and len(self.sent) >= self.succeeding_first:
            self.failures -= 1
            raise redis.ConnectionError("Redis is down")
        self.sent.append(envelope.task_id)
        return "celery-id"

    def enqueue_many(self, agent_id: str, envelopes: list[TaskEnvelope],
                     queued: Callable[[int, str], None]) -> None:
        for position, envelope in enumerate(envelopes):
            queued(position, self.enqueue(agent_id, envelope))


class WatchedLedger(TaskLedger):
    """The real ledger, counting the claims it answered ``pending`` (another bridge is queueing that task)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        super().__init__(client, keys)
        self.pending = 0
        self._answered = threading.Condition()

    def claim_many(self, fingerprints: list[str]) -> list[str]:
        answers = super().claim_many(fingerprints)
        with self._answered:
            self.pending += answers.count(PENDING)
            self._answered.notify_all()
        return answers

    def wait_for_pending(self, count: int, timeout_s: float = 10) -> None:
        with self._answered:
            assert self._answered.wait_for(lambda: self.pending >= count, timeout_s), (
                f"fewer than {count} claims answered pending within {timeout_s} s")


def message(mid: int, task_id: str, payload: bytes | None = None) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(mid, b"/control/agents/a/input")
    msg.payload = payload or json.dumps({"task_id": task_id, "conversation_id": "c",
                                         "topic": "/control/agents/a/input", "input": "x"}).encode()
    msg.qos = 1
    return msg


def dispatcher(redis_client: redis.Redis, key_prefix: str, enqueuer: FlakyEnqueuer,
               ledger: TaskLedger | None = None) -> tuple[Dispatcher, FakeLink]:
    keys = Keys(key_prefix)
    link = FakeLink()
    ledger = ledger or TaskLedger(redis_client, keys)
    return Dispatcher(link, Inbox(), ledger, enqueuer, StatsRecorder(redis_client, keys)), link


def test_a_task_is_acknowledged_only_after_the_enqueue_finally_succeeds(redis_client: redis.Redis,
                                                                        key_prefix: str) -> None:
    enqueuer = FlakyEnqueuer(failures=2)
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer)
    dispatch.start()
    task_id = str(uuid.uuid4())
    dispatch.inbox.put(message(7, task_id))
    link.wait_for_acks(1)
    dispatch.stop()
    assert enqueuer.sent == [task_id] and link.acked == [7]


def test_a_duplicate_is_acknowledged_and_not_enqueued(redis_client: redis.Redis, key_prefix: str) -> None:
    enqueuer = FlakyEnqueuer(failures=0)
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer)
    task_id = str(uuid.uuid4())
    dispatch.handle(message(1, task_id))
    dispatch.handle(message(2, task_id))
    assert enqueuer.sent == [task_id] and link.acked == [1, 2]


def test_a_delivery_claimed_by_a_bridge_that_died_waits_for_the_claim_and_is_then_processed(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    task_id = str(uuid.uuid4())
    ledger = WatchedLedger(redis_client, Keys(key_prefix))
    fingerprint = TaskEnvelope.model_validate(json.loads(message(1, task_id).payload)).pipeline_fingerprint()
    assert ledger.claim(fingerprint) == "new"  # the dead bridge's claim, never confirmed
    enqueuer = FlakyEnqueuer(failures=0)
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer, ledger)
    dispatch.start()
    dispatch.inbox.put(message(3, task_id))
    ledger.wait_for_pending(2)  # asked, and asked again: it waits
    assert link.acked == [] and enqueuer.sent == []
    redis_client.delete(Keys(key_prefix).ledger(fingerprint))  # as if the claim expired
    link.wait_for_acks(1)
    dispatch.stop()
    assert enqueuer.sent == [task_id] and link.acked == [3]


def fingerprint_of(task_id: str) -> str:
    return TaskEnvelope.model_validate(json.loads(message(0, task_id).payload)).pipeline_fingerprint()


def run_backlog(dispatch: Dispatcher, link: FakeLink, messages: list[paho.MQTTMessage]) -> None:
    """Submit every message before the dispatcher starts, as a backlog, and wait until all are acknowledged."""
    for msg in messages:
        dispatch.inbox.put(msg)
    dispatch.start()
    link.wait_for_acks(len(messages))
    dispatch.stop()


def assert_backlog_queued_once_in_order(redis_client: redis.Redis, key_prefix: str, enqueuer: FlakyEnqueuer,
                                        count: int) -> None:
    """A backlog of ``count`` tasks: each sent once and acknowledged in the order received, all queued."""
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer)
    task_ids = [str(uuid.uuid4()) for _ in range(count)]
    run_backlog(dispatch, link, [message(n, t) for n, t in enumerate(task_ids)])
    assert enqueuer.sent == task_ids and link.acked == list(range(count))
    ledger = TaskLedger(redis_client, Keys(key_prefix))
    assert {ledger.state(fingerprint_of(t)) for t in task_ids} == {"queued"}


def test_a_backlog_is_queued_and_acknowledged_in_the_order_received(redis_client: redis.Redis,
                                                                   key_prefix: str) -> None:
    assert_backlog_queued_once_in_order(redis_client, key_prefix, FlakyEnqueuer(failures=0), 150)


class CountingLedger(TaskLedger):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.round_trips = 0

    def claim(self, fingerprint: str) -> str:
        self.round_trips += 1
        return super().claim(fingerprint)

    def claim_many(self, fingerprints: list[str]) -> list[str]:
        self.round_trips += 1
        return super().claim_many(fingerprints)

    def confirm(self, fingerprint: str) -> None:
        self.round_trips += 1
        super().confirm(fingerprint)

    def confirm_many(self, fingerprints: list[str]) -> None:
        self.round_trips += 1
        super().confirm_many(fingerprints)


def test_a_backlog_is_claimed_and_confirmed_in_a_few_round_trips(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    enqueuer, link, ledger = FlakyEnqueuer(failures=0), FakeLink(), CountingLedger(redis_client, keys)
    dispatch = Dispatcher(link, Inbox(), ledger, enqueuer, StatsRecorder(redis_client, keys))
    run_backlog(dispatch, link, [message(n, str(uuid.uuid4())) for n in range(128)])
    assert len(enqueuer.sent) == 128 and ledger.round_trips == 4


def test_duplicates_and_invalid_messages_in_a_backlog_are_answered_in_their_place(redis_client: redis.Redis,
                                                                                 key_prefix: str) -> None:
    enqueuer = FlakyEnqueuer(failures=0)
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer)
    seen, twice = str(uuid.uuid4()), str(uuid.uuid4())
    ledger = TaskLedger(redis_client, Keys(key_prefix))
    ledger.claim(fingerprint_of(seen))
    ledger.confirm(fingerprint_of(seen))
    fresh = [str(uuid.uuid4()) for _ in range(4)]
    backlog = [message(0, fresh[0]), message(1, seen), message(2, fresh[1]), message(3, twice),
               message(4, "", b'{"conversation_id": "c", "input": 1}'), message(5, twice), message(6, fresh[2]),
               message(7, fresh[3])]
    run_backlog(dispatch, link, backlog)
    assert enqueuer.sent == [fresh[0], fresh[1], twice, fresh[2], fresh[3]]
    assert link.acked == list(range(8))
    assert [topic for topic, _ in link.errors] == ["/conversations/c/a"]


def test_a_backlog_waits_at_a_task_another_bridge_is_queueing_and_keeps_its_order(redis_client: redis.Redis,
                                                                                  key_prefix: str) -> None:
    enqueuer = FlakyEnqueuer(failures=0)
    ledger = WatchedLedger(redis_client, Keys(key_prefix))
    dispatch, link = dispatcher(redis_client, key_prefix, enqueuer, ledger)
    task_ids = [str(uuid.uuid4()) for _ in range(6)]
    assert ledger.claim(fingerprint_of(task_ids[2])) == "new"  # another bridge's claim, never confirmed
    for n, task_id in enumerate(task_ids):
        dispatch.inbox.put(message(n, task_id))
    dispatch.start()
    link.wait_for_acks(2)
    ledger.wait_for_pending(2)  # asked, and asked again: it waits at the third
    assert enqueuer.sent == task_ids[:2] and link.acked == [0, 1]
    assert ledger.state(fingerprint_of(task_ids[3])) is None  # nothing after the wait is claimed meanwhile
    redis_client.delete(Keys(key_prefix).ledger(fingerprint_of(task_ids[2])))  # as if the claim expired
    link.wait_for_acks(6)
    dispatch.stop()
    assert enqueuer.sent == task_ids and link.acked == list(range(6))


def test_a_backlog_whose_enqueue_fails_midway_queues_each_task_once_in_order(redis_client: redis.Redis,
                                                                            key_prefix: str) -> None:
    assert_backlog_queued_once_in_order(redis_client, key_prefix, FlakyEnqueuer(failures=2, succeeding_first=3), 10)


class BrokenEnqueuer(FlakyEnqueuer):
    """Fails the way a defect does: not an infrastructure error, so never worth retrying."""

    def enqueue(self, agent_id: str, envelope: TaskEnvelope) -> str:
        raise RuntimeError("a bug in the enqueuer")


def test_messages_dropped_on_an_unexpected_failure_are_acknowledged_and_counted(redis_client: redis.Redis,
                                                                               key_prefix: str) -> None:
    dispatch, link = dispatcher(redis_client, key_prefix, BrokenEnqueuer(failures=0))
    run_backlog(dispatch, link, [message(n, str(uuid.uuid4())) for n in range(3)])
    assert link.acked == [0, 1, 2]
    stats = redis_client.hgetall(Keys(key_prefix).agent_stats("a"))
    assert stats.get("tasks_dropped") == "3" and "tasks_rejected" not in stats
