"""The load generator, run as a process of its own: publishes tasks over MQTT and times every answer.

``python -m bench.load SPEC_JSON`` prints ``ready`` once subscribed, ``done`` when the last answer came,
and, after listening a little longer for duplicates, one JSON line with the result.
Closed loop (at most ``window`` tasks unanswered) finds the peak; open loop (``rate`` tasks/s) measures
latency at a chosen load. In ``loopback`` mode it is the bare paho baseline: each message is its own
answer, one QoS 1 hop through the broker and back.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

RECEIVE_MAXIMUM = 65535


@dataclass(frozen=True)
class LoadSpec:
    port: int
    agents: list[str]  # the first gets the task; the others are its `next` chain
    count: int
    window: int = 0  # most tasks unanswered at once; 0 = no limit
    rate: float = 0.0  # tasks per second; 0 = as fast as the window allows
    loopback: bool = False
    timeout_s: float = 60.0  # give up when no answer came for this long
    linger_s: float = 0.5  # listen this long after the last answer, for duplicates
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


@dataclass
class LoadResult:
    sent: int = 0
    answered: int = 0
    errors: int = 0
    wrong: int = 0
    duplicated: int = 0
    lost: int = 0
    seconds: float = 0.0
    throughput: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def marker(index: int) -> str:
    """Each task's input carries its own marker; a right answer contains it."""
    return f"#{index}#"


def _no_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Generator:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.result = LoadResult()
        self._ids: dict[str, int] = {}
        self._sent_at: list[float] = [0.0] * spec.count
        self._latencies: list[float] = []
        self._answers: list[int] = [0] * spec.count
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(spec.window) if spec.window else None
        self._last_answer = 0.0
        self._subscribed = threading.Event()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-load-{spec.run_id}",
                                   protocol=paho.MQTTv5)
        self._client.on_socket_open = _no_delay
        self._client.max_inflight_messages_set(RECEIVE_MAXIMUM)
        self._client.on_message = self._received
        self._client.on_subscribe = lambda *args: self._subscribed.set()

    @property
    def input_topic(self) -> str:
        if self.spec.loopback:
            return f"/bench/{self.spec.run_id}/loop"
        return f"/control/agents/{self.spec.agents[0]}/input"

    def connect(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect("127.0.0.1", self.spec.port, clean_start=True, properties=properties)
        self._client.loop_start()
        answers = self.input_topic if self.spec.loopback else f"/conversations/+/{self.spec.agents[-1]}"
        self._client.subscribe(answers, qos=1)
        if not self._subscribed.wait(10):
            raise RuntimeError("no SUBACK from the broker")

    def run(self) -> LoadResult:
        spec = self.spec
        interval = 1.0 / spec.rate if spec.rate else 0.0
        started = time.perf_counter()
        for index in range(spec.count):
            if self._slots is not None:
                self._slots.acquire()
            if interval:
                delay = started + index * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            task_id = str(uuid.uuid4())
            payload = self._payload(task_id, index)
            with self._lock:
                self._ids[task_id] = index
                self._sent_at[index] = time.perf_counter()
            self._client.publish(self.input_topic, payload, qos=1)
            self.result.sent += 1
        self._wait_for_answers()
        print("done", flush=True)
        time.sleep(spec.linger_s)
        self._client.disconnect()
        self._client.loop_stop()
        return self._summarize(started)

    def _payload(self, task_id: str, index: int) -> str:
        if self.spec.loopback:
            return json.dumps({"task_id": task_id, "input": marker(index)})
        chain: dict[str, Any] | None = None
        for agent in reversed(self.spec.agents[1:]):
            chain = {"topic": f"/control/agents/{agent}/input", "instruction": f"then {agent}", "input": None,
                     "next": chain}
        return json.dumps({"task_id": task_id, "conversation_id": f"bench-{self.spec.run_id}-{index}",
                           "topic": self.input_topic, "instruction": "say", "input": marker(index), "next": chain})

    def _wait_for_answers(self) -> None:
        while True:
            with self._lock:
                done = self.result.answered + self.result.errors + self.result.wrong >= self.result.sent
                idle = time.perf_counter() - max(self._last_answer, self._sent_at[-1] if self._sent_at else 0.0)
            if done or idle > self.spec.timeout_s:
                return
            time.sleep(0.02)

    def _received(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        try:
            body = json.loads(message.payload)
            index = self._ids[body["task_id"]]
        except (ValueError, KeyError, TypeError):
            self._note(f"unexpected message on {message.topic}: {message.payload[:200]!r}")
            return
        with self._lock:
            self._answers[index] += 1
            if self._answers[index] > 1:
                self.result.duplicated += 1
                return
            self._last_answer = now
            if "error" in body:
                self.result.errors += 1
                self._note(f"error answer: {json.dumps(body)[:300]}")
            elif marker(index) not in str(body.get("response", body.get("input", ""))):
                self.result.wrong += 1
                self._note(f"wrong answer: {json.dumps(body)[:300]}")
            else:
                self.result.answered += 1
                self._latencies.append((now - self._sent_at[index]) * 1000)
        if self._slots is not None:
            self._slots.release()

    def _note(self, text: str) -> None:
        if len(self.result.first_errors) < 5:
            self.result.first_errors.append(text)

    def _summarize(self, started: float) -> LoadResult:
        result = self.result
        result.lost = result.sent - result.answered - result.errors - result.wrong
        result.seconds = round(max(self._last_answer - started, 1e-9), 3)
        result.throughput = round(result.answered / result.seconds, 1)
        ordered = sorted(self._latencies)
        result.latency_ms = {name: round(percentile(ordered, q), 2)
                             for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}
        return result


def main(argv: list[str]) -> int:
    spec = LoadSpec(**json.loads(argv[0]))
    generator = Generator(spec)
    generator.connect()
    print("ready", flush=True)
    result = generator.run()
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
