"""Another agent, as the reliability scenarios need it: sends tasks in bulk and counts every answer.

Unlike tests.e2e.stack.MqttPeer it never blocks on a publish (paho queues QoS 1 messages while the
broker is away and resends them after reconnecting), and it can keep a persistent session, so answers
published while the broker restarts are still delivered to it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


def task_envelope(agent_id: str, conversation_id: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"task_id": str(uuid.uuid4()), "conversation_id": conversation_id,
            "topic": f"/control/agents/{agent_id}/input", "instruction": "say", "input": {"text": text},
            "next": None, **fields}


@dataclass(frozen=True)
class Tally:
    """What came back for a set of tasks: the exact counts every scenario asserts on."""

    sent: int
    answered: int
    responses: int
    errors: int
    missing: int
    duplicated: int
    wrong_topic: int

    @property
    def exactly_once(self) -> bool:
        return self.answered == self.sent and self.missing == 0 and self.duplicated == 0 and self.wrong_topic == 0


class LoadPeer:
    def __init__(self, mqtt_url: str, persistent: bool = False, name: str | None = None) -> None:
        parts = urlsplit(mqtt_url)
        self.client_id = f"reliability-{name or uuid.uuid4().hex[:10]}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._connected
        self.client.on_message = self._received
        self.client.on_subscribe = self._subscribed
        # task id -> (topic, body, monotonic arrival time) of every answer that named it
        self.answers: dict[str, list[tuple[str, dict[str, Any], float]]] = defaultdict(list)
        self.unattributed: list[tuple[str, Any]] = []
        # Messages the broker marked as redelivered (QoS 1 DUP flag), by task id.
        self.redelivered: dict[str, int] = defaultdict(int)
        self.statuses: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        # Sees every message but statuses, in arrival order (for checks that need more than task ids).
        self.on_any: Callable[[str, Any], None] = lambda topic, body: None
        self.connected = threading.Event()
        self._topics: list[str] = []
        self._lock = threading.Condition()
        self._subacks = 0
        self._pending: list[paho.MQTTMessageInfo] = []
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if persistent:
            properties.SessionExpiryInterval = 3600
        self.client.connect_async(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=5,
                                  clean_start=not persistent, properties=properties)
        self.client.loop_start()

    def follow(self, topic: str, timeout_s: float = 10) -> None:
        """Subscribe (again after every reconnect) and wait for the SUBACK."""
        assert self.connected.wait(timeout_s), f"{self.client_id} could not connect"
        with self._lock:
            self._topics.append(topic)
            wanted = self._subacks + 1
        self.client.subscribe(topic, qos=1)
        with self._lock:
            assert self._lock.wait_for(lambda: self._subacks >= wanted, timeout_s), f"no SUBACK for {topic}"

    def send(self, agent_id: str, conversation_id: str, text: str = "hello", **fields: Any) -> dict[str, Any]:
        envelope = task_envelope(agent_id, conversation_id, text, **fields)
        self.send_raw(envelope["topic"], json.dumps(envelope).encode())
        return envelope

    def send_raw(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._lock:
            self._pending.append(info)

    def flush(self, timeout_s: float = 30) -> None:
        """Wait until the broker acknowledged everything sent so far."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            pending, self._pending = self._pending, []
        for info in pending:
            while not info.is_published():
                assert time.monotonic() < deadline, f"{self.client_id}: the broker did not take every task"
                time.sleep(0.01)

    def wait_for_answers(self, task_ids: list[str], timeout_s: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: all(self.answers.get(t) for t in task_ids), timeout_s)

    def tally(self, envelopes: list[dict[str, Any]], agent_id: str) -> Tally:
        with self._lock:
            got = {e["task_id"]: list(self.answers.get(e["task_id"], [])) for e in envelopes}
        expected_topic = {e["task_id"]: f"/conversations/{e['conversation_id']}/{agent_id}" for e in envelopes}
        bodies = [body for answers in got.values() for _, body, _ in answers[:1]]
        return Tally(
            sent=len(envelopes),
            answered=sum(1 for answers in got.values() if answers),
            responses=sum(1 for body in bodies if "response" in body),
            errors=sum(1 for body in bodies if "error" in body),
            missing=sum(1 for answers in got.values() if not answers),
            duplicated=sum(len(answers) - 1 for answers in got.values() if len(answers) > 1),
            wrong_topic=sum(1 for task_id, answers in got.items() for topic, _, _ in answers
                            if topic != expected_topic[task_id]),
        )

    def last_status(self, agent_id: str) -> dict[str, Any] | None:
        with self._lock:
            history = self.statuses.get(agent_id)
            return history[-1][1] if history else None

    def wait_for_status(self, agent_id: str, status: str, timeout_s: float, workers: int | None = None) -> float:
        """Seconds until the agent's status said ``status`` (and ``workers``); it may already say so."""
        started = time.monotonic()

        def reached() -> bool:
            latest = (self.statuses.get(agent_id) or [(0.0, {})])[-1][1]
            return latest.get("status") == status and workers in (None, latest.get("workers"))

        with self._lock:
            ok = self._lock.wait_for(reached, timeout_s)
        assert ok, f"{agent_id} did not become {status} within {timeout_s} s: {self.last_status(agent_id)}"
        return time.monotonic() - started

    def answer_times(self, envelopes: list[dict[str, Any]]) -> list[float]:
        """Arrival times (monotonic) of the first answer to each task that has one."""
        with self._lock:
            return sorted(self.answers[e["task_id"]][0][2] for e in envelopes if self.answers.get(e["task_id"]))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            return
        self.connected.set()
        with self._lock:
            topics = list(self._topics)
        if not flags.session_present:
            for topic in topics:
                client.subscribe(topic, qos=1)

    def _subscribed(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        with self._lock:
            self._subacks += 1
            self._lock.notify_all()

    def _received(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            body: Any = json.loads(message.payload)
        except ValueError:
            body = message.payload
        with self._lock:
            if not message.topic.endswith("/status"):
                self.on_any(message.topic, body)
            if message.topic.endswith("/status") and isinstance(body, dict):
                self.statuses[str(body.get("agent_id"))].append((time.monotonic(), body))
            elif isinstance(body, dict) and isinstance(body.get("task_id"), str):
                self.answers[body["task_id"]].append((message.topic, body, time.monotonic()))
                if message.dup:
                    self.redelivered[body["task_id"]] += 1
            else:
                self.unattributed.append((message.topic, body))
            self._lock.notify_all()


class TaskStream:
    """Tasks published at a steady rate from a thread, while the scenario breaks something."""

    def __init__(self, peer: LoadPeer, agent_id: str, conversation_id: str, count: int, per_second: float) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.sent_at: dict[str, float] = {}
        self._peer, self._agent_id, self._conversation_id = peer, agent_id, conversation_id
        self._count, self._gap_s = count, 1.0 / per_second
        self._thread = threading.Thread(target=self._run, name="task-stream", daemon=True)

    def __enter__(self) -> TaskStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()

    def wait_until_sent(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.envelopes) < count:
            assert time.monotonic() < deadline, f"only {len(self.envelopes)} of {count} tasks sent"
            time.sleep(0.01)

    def sent_between(self, start: float, end: float) -> list[dict[str, Any]]:
        return [e for e in self.envelopes if start <= self.sent_at[e["task_id"]] < end]

    def _run(self) -> None:
        next_at = time.monotonic()
        for i in range(self._count):
            envelope = self._peer.send(self._agent_id, self._conversation_id, f"task {i}")
            self.sent_at[envelope["task_id"]] = time.monotonic()
            self.envelopes.append(envelope)
            next_at += self._gap_s
            time.sleep(max(0.0, next_at - time.monotonic()))
