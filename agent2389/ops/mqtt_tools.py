"""``agent2389 inject`` and ``agent2389 monitor``: talk to agents over MQTT the way any other agent does."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho

from agent2389.addresses import broker_address
from agent2389.config import environment
from agent2389.config.agent import MqttSection
from agent2389.config.files import load_agents
from agent2389.mqtt import connect_options, make_client, wait_for_puback
from agent2389.ops.progress_view import progress_line, trace_lines
from agent2389.protocol.errors import ConfigError
from agent2389.protocol.progress import ALL_PROGRESS, is_progress_topic
from agent2389.protocol.topics import input_topic, require_agent_id, require_conversation_id, status_topic

Received = tuple[str, bytes, bool]
# A broker sends a retained message right after the SUBACK; none by then means there is none.
RETAINED_STATUS_WAIT_S = 1.0
LAST_PROGRESS_WAIT_S = 1.0


def broker_settings(args: argparse.Namespace) -> MqttSection:
    """``--broker`` wins, then the first agent of ``--config``, then AGENT2389_MQTT_URL, then localhost."""
    if getattr(args, "broker", None):
        return MqttSection(broker_url=args.broker)
    if getattr(args, "config", None):
        return load_agents(args.config)[0].mqtt
    return MqttSection(broker_url=environment.value(environment.MQTT_URL, "mqtt://localhost:1883"))


def connect(mqtt: MqttSection, inbox: queue.Queue[Received], topics: list[str]) -> paho.Client:
    """Connected and subscribed; a broker that refuses MQTT 5 (amqtt, old brokers) gets MQTT 3.1.1."""
    client = _connect_as(mqtt)
    if client is None and mqtt.protocol == "5":
        mqtt = mqtt.model_copy(update={"protocol": "3.1.1"})
        client = _connect_as(mqtt)
    if client is None:
        raise ConfigError(f"the MQTT broker at {mqtt.host}:{mqtt.port} refused the connection")
    subscribed = queue.Queue[bool]()
    client.on_message = lambda c, u, m: inbox.put((m.topic, bytes(m.payload), bool(m.retain)))
    client.on_subscribe = lambda *a: subscribed.put(True)
    if topics:
        client.subscribe([(topic, 1) for topic in topics])
        try:
            subscribed.get(timeout=10)
        except queue.Empty:
            raise ConfigError("the MQTT broker did not confirm the subscription") from None
    return client


def _connect_as(mqtt: MqttSection) -> paho.Client | None:
    client = make_client(mqtt, f"agent2389-cli-{uuid.uuid4().hex[:8]}")
    connected = queue.Queue[bool]()
    client.on_connect = lambda c, u, f, reason, p: connected.put(not reason.is_failure)
    client.on_disconnect = lambda *args: connected.put(False)
    try:
        client.connect(**connect_options(mqtt, persistent=False))
    except OSError as exc:
        raise ConfigError(f"cannot reach the MQTT broker at {mqtt.host}:{mqtt.port} ({exc.strerror or exc})") from None
    client.loop_start()
    try:
        if connected.get(timeout=2):
            return client
    except queue.Empty:
        pass
    client.loop_stop()
    client.disconnect()
    return None


def build_envelope(args: argparse.Namespace) -> dict[str, Any]:
    agent_id = require_agent_id(args.agent)
    conversation_id = require_conversation_id(args.conversation_id or f"inject-{uuid.uuid4().hex[:12]}")
    body: Any = args.text if args.text is not None else ""
    if args.input is not None:
        try:
            body = json.loads(args.input)
        except ValueError as exc:
            raise ConfigError(f"--input is not valid JSON: {exc}") from None
    nxt: dict[str, Any] | None = None
    for later in reversed([a.strip() for a in (args.next or "").split(",") if a.strip()]):
        nxt = {"topic": input_topic(require_agent_id(later)), "instruction": None, "input": None, "next": nxt}
    if getattr(args, "v2", False) and nxt is not None:
        raise ConfigError("--v2 lets the agents route the work; --next fixes the route: use one of them")
    envelope = {"task_id": str(uuid.uuid4()), "conversation_id": conversation_id, "topic": input_topic(agent_id),
                "instruction": args.instruction, "input": body, "next": nxt}
    if getattr(args, "v2", False):
        # A workflow's first envelope (PROTOCOL.md §9): no context or routing_trace yet.
        envelope["version"] = "2.0"
    return envelope


def run_inject(args: argparse.Namespace) -> int:
    envelope = build_envelope(args)
    inbox: queue.Queue[Received] = queue.Queue()
    agent_id, mqtt = args.agent, broker_settings(args)
    # A pipeline's or a workflow's answer may come from any agent, and so may its progress: match on task_id.
    waiting = [f"/conversations/{envelope['conversation_id']}/+", ALL_PROGRESS] if args.wait else []
    client = connect(mqtt, inbox, [status_topic(agent_id), *waiting])
    started = time.monotonic()
    try:
        if not _agent_ready(inbox, agent_id, mqtt, args.wait):
            return 1
        info = client.publish(envelope["topic"], json.dumps(envelope), qos=1)
        if not wait_for_puback(info, 10):
            print("agent2389 inject: the broker did not acknowledge the task", file=sys.stderr)
            return 1
        print(f"sent task {envelope['task_id']} to {envelope['topic']} (conversation "
              f"{envelope['conversation_id']})", file=sys.stderr)
        if not args.wait:
            return 0
        return _await_answer(inbox, envelope["task_id"], args.wait - (time.monotonic() - started), args.json)
    finally:
        client.disconnect()
        client.loop_stop()


def _agent_ready(inbox: queue.Queue[Received], agent_id: str, mqtt: MqttSection, wait_s: float | None) -> bool:
    """Whether the agent's retained status says ``available`` (waiting up to ``wait_s`` for it); says why not."""
    status = _next_status(inbox, RETAINED_STATUS_WAIT_S)
    if status == "available":
        return True
    state = (f"no agent {agent_id!r} has announced itself on {broker_address(mqtt)} (no status on "
             f"{status_topic(agent_id)})" if status is None else f"agent {agent_id!r} is {status}")
    if not wait_s:
        print(f"agent2389 inject: {state}; nothing sent (--wait S waits for it)", file=sys.stderr)
        return False
    print(f"agent2389 inject: {state}; waiting up to {wait_s:g} s for it to become available", file=sys.stderr)
    deadline = time.monotonic() + wait_s
    while (remaining := deadline - time.monotonic()) > 0:
        if _next_status(inbox, remaining) == "available":
            return True
    print(f"agent2389 inject: agent {agent_id!r} did not become available within {wait_s:g} s; nothing sent",
          file=sys.stderr)
    return False


def _next_status(inbox: queue.Queue[Received], timeout_s: float) -> str | None:
    """The next status message's ``status`` within ``timeout_s``; other messages (nothing was sent yet, so
    none is about our task) are skipped."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            topic, payload, _ = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        if topic.endswith("/status"):
            break
    try:
        body = json.loads(payload)
    except ValueError:
        return "unreadable"
    return str(body.get("status")) if isinstance(body, dict) else "unreadable"


def _await_answer(inbox: queue.Queue[Received], task_id: str, wait_s: float, raw: bool) -> int:
    for topic, body in _messages_of(inbox, task_id, wait_s):
        if is_progress_topic(topic):
            print(progress_line(body), file=sys.stderr, flush=True)
            continue
        _print_last_progress(inbox, task_id, topic)
        return _print_answer(body, raw)
    print(f"agent2389 inject: no answer within {wait_s:g} s", file=sys.stderr)
    return 1


def _print_last_progress(inbox: queue.Queue[Received], task_id: str, answer_topic: str) -> None:
    """The answering agent says TaskComplete (or TaskError) once the answer is out, so that event can reach
    us just after the answer: wait a moment for it (progress is best effort, so never long)."""
    for topic, body in _messages_of(inbox, task_id, LAST_PROGRESS_WAIT_S):
        if is_progress_topic(topic):
            print(progress_line(body), file=sys.stderr, flush=True)
            if _last_of_the_answer(body, answer_topic):
                return


def _messages_of(inbox: queue.Queue[Received], task_id: str, wait_s: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """The JSON objects about ``task_id`` that arrive within ``wait_s``, with their topics."""
    deadline = time.monotonic() + wait_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            topic, payload, _ = inbox.get(timeout=remaining)
        except queue.Empty:
            return
        try:
            body = json.loads(payload)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("task_id") == task_id:
            yield topic, body


def _last_of_the_answer(event: dict[str, Any], answer_topic: str) -> bool:
    if event.get("event_type") == "TaskError":  # an error goes to the failing agent's conversation topic
        return bool(event.get("agent_id") == answer_topic.rsplit("/", 1)[-1])
    metadata = event.get("metadata")
    return isinstance(metadata, dict) and metadata.get("published_to") == answer_topic


def _print_answer(body: dict[str, Any], raw: bool) -> int:
    """The trace on stderr, the answer on stdout (or the error on stderr); 1 for an error."""
    for line in trace_lines(body.get("routing_trace")):
        print(line, file=sys.stderr)
    if raw:
        print(json.dumps(body))
    error = body.get("error")
    if error is not None:
        if not raw:
            details = error if isinstance(error, dict) else {}
            print(f"error {details.get('code')}: {details.get('message')}", file=sys.stderr)
        return 1
    if not raw:
        print(body.get("response"))
    return 0


def run_monitor(args: argparse.Namespace) -> int:
    agent = require_agent_id(args.agent) if args.agent else "+"
    topics = [f"/control/agents/{agent}/status", f"/control/agents/{agent}/input",
              f"/control/agents/{agent}/progress/#", f"/conversations/+/{agent}"]
    inbox: queue.Queue[Received] = queue.Queue()
    client = connect(broker_settings(args), inbox, topics)
    shown = 0
    try:
        while args.count is None or shown < args.count:
            topic, payload, retained = inbox.get()
            print(_format(topic, payload, retained, args.format), flush=True)
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def _format(topic: str, payload: bytes, retained: bool, fmt: str) -> str:
    try:
        body: Any = json.loads(payload)
    except ValueError:
        body = payload.decode("utf-8", "replace")
    if fmt == "json":
        return json.dumps({"topic": topic, "retained": retained, "payload": body})
    stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    if is_progress_topic(topic) and isinstance(body, dict):
        return f"{stamp} {'progress':<12} {progress_line(body)}"
    kind = "status" if topic.endswith("/status") else "input" if topic.endswith("/input") else "conversation"
    text = json.dumps(body) if not isinstance(body, str) else body
    return f"{stamp} {kind:<12} {topic}{' (retained)' if retained else ''}  {text[:300]}"
