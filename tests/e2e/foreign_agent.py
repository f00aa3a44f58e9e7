"""An agent of another implementation, written with nothing but paho (PROTOCOL.md §8, §9).

It speaks MQTT 3.1.1 (so its status has no message expiry), announces itself with a status of its own
minimal shape (``agent_id``, ``status``, ``timestamp``, ``capabilities``, retained) and answers every v2
envelope by routing it on to ``route_to`` with ``context`` and ``routing_trace`` updated as §9 says.
A v1 envelope, or any envelope when it is v1-only (``route_to`` None), it answers on the conversation
topic. It shares no code with agent2389 on purpose: it is
what a third party would write from the protocol text alone.
"""

from __future__ import annotations

import json
import queue
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ForeignAgent:
    def __init__(self, mqtt_url: str, agent_id: str, route_to: str | None, capabilities: list[str]) -> None:
        self.agent_id = agent_id
        self.route_to = route_to
        self.capabilities = capabilities
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self._subscribed = threading.Event()
        parts = urlsplit(mqtt_url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"foreign-{agent_id}",
                                  protocol=paho.MQTTv311)
        self.client.will_set(self.status_topic, json.dumps(self._status("unavailable")), qos=1, retain=True)
        self.client.on_connect = self._connected
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._message
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the foreign agent got no SUBACK"
        self.client.publish(self.status_topic, json.dumps(self._status("available")), qos=1,
                            retain=True).wait_for_publish(5)

    @property
    def status_topic(self) -> str:
        return f"/control/agents/{self.agent_id}/status"

    def close(self) -> None:
        """Leave as any agent would, then clear the retained status so no later test sees it."""
        self.client.publish(self.status_topic, json.dumps(self._status("unavailable")), qos=1,
                            retain=True).wait_for_publish(5)
        self.client.publish(self.status_topic, b"", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()

    def next_received(self, timeout_s: float = 30) -> dict[str, Any]:
        return self.received.get(timeout=timeout_s)

    def _status(self, status: str) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "status": status, "timestamp": now_rfc3339(),
                "capabilities": self.capabilities}

    def _connected(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(f"/control/agents/{self.agent_id}/input", qos=1)

    def _message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.retain:
            return
        try:
            envelope = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(envelope, dict):
            return
        self.received.put(envelope)
        output = f"{self.agent_id} reviewed: {envelope.get('input')}"
        if self.route_to and str(envelope.get("version", "")).startswith("2") and not envelope.get("next"):
            target, body = self._routed(envelope, output)
        else:
            target = f"/conversations/{envelope.get('conversation_id')}/{self.agent_id}"
            body = {"task_id": envelope.get("task_id"), "response": output}
        client.publish(target, json.dumps(body), qos=1)

    def _routed(self, envelope: dict[str, Any], output: str) -> tuple[str, dict[str, Any]]:
        """§9 "Forward", done by hand: the same task, one more step, one more trace entry."""
        assert self.route_to is not None
        context = dict(envelope.get("context") or {})
        step = int(context.get("iteration_count", 0)) + 1
        original = context.get("original_query") or f"{envelope.get('instruction') or ''} {envelope.get('input')}"
        steps = [*context.get("steps_completed", []),
                 {"agent_id": self.agent_id, "action": envelope.get("instruction") or "", "timestamp": now_rfc3339()}]
        trace = [*(envelope.get("routing_trace") or []),
                 {"from_agent": self.agent_id, "to_agent": self.route_to, "reason": "back to the team for the final",
                  "timestamp": now_rfc3339(), "step_number": step}]
        topic = f"/control/agents/{self.route_to}/input"
        return topic, {
            "task_id": envelope["task_id"], "conversation_id": envelope["conversation_id"], "topic": topic,
            "instruction": "finish it", "input": output, "next": None, "version": "2.0",
            "context": {"original_query": original, "steps_completed": steps[-100:], "iteration_count": step},
            "routing_trace": trace,
        }
